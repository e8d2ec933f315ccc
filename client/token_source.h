// Which bearer token the CLI presents to the orchestrator, and where it came
// from. The first source that gives one wins:
//   1. --token TOKEN
//   2. env CONVEYOR_TOKEN
//   3. --token-file PATH, else env CONVEYOR_TOKEN_FILE
//   4. the default file, $XDG_CONFIG_HOME/conveyor/token or
//      $HOME/.config/conveyor/token, when it exists
// None: calls go without a token (the server may allow anonymous callers).
// An empty flag or variable counts as not given.
//
// Messages name the source and the path, never the token. Pure apart from
// reading the token file; thread-safe.
#ifndef CONVEYOR_CLIENT_TOKEN_SOURCE_H_
#define CONVEYOR_CLIENT_TOKEN_SOURCE_H_

#include <string>

#include "absl/status/statusor.h"

namespace conveyor::client {

// What the sources are given: the two flags and the environment. Plain
// strings, so that tests resolve without touching the process environment.
struct TokenInputs {
  std::string flag_token;       // --token
  std::string flag_token_file;  // --token-file
  std::string env_token;        // CONVEYOR_TOKEN
  std::string env_token_file;   // CONVEYOR_TOKEN_FILE
  std::string xdg_config_home;  // XDG_CONFIG_HOME
  std::string home;             // HOME
};

// The flags as given plus this process's environment.
TokenInputs TokenInputsFromEnvironment(const std::string& flag_token,
                                       const std::string& flag_token_file);

enum class TokenOrigin { kNone, kFlag, kEnv, kFlagFile, kEnvFile, kDefaultFile };

// Where the token came from: all an error message or hint may say about it.
struct TokenSource {
  TokenOrigin origin = TokenOrigin::kNone;
  // The file read (file origins); with kNone, the default file looked for
  // ("" when neither XDG_CONFIG_HOME nor HOME is set).
  std::string path;
};

struct BearerToken {
  std::string value;  // empty: no token, send none
  TokenSource source;
};

// $XDG_CONFIG_HOME/conveyor/token if XDG_CONFIG_HOME is an absolute path
// (the XDG spec ignores a relative one), else $HOME/.config/conveyor/token,
// else "".
std::string DefaultTokenPath(const TokenInputs& inputs);

// The token of the first source that gives one (see the top). A source
// that is given but unusable is an error, never skipped for the next one:
// INVALID_ARGUMENT for a token that is not printable ASCII without spaces,
// and ReadTokenFile's codes (token_file.h) for a named file, or for a
// default file that exists. A missing default file is no error.
absl::StatusOr<BearerToken> ResolveToken(const TokenInputs& inputs);

// "--token", "CONVEYOR_TOKEN", "--token-file /p", "CONVEYOR_TOKEN_FILE=/p",
// "the default token file /p"; "no token" for kNone.
std::string DescribeTokenSource(const TokenSource& source);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_TOKEN_SOURCE_H_
