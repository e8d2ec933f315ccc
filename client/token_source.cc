#include "client/token_source.h"

#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/token_file.h"

namespace conveyor::client {
namespace {

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

// The flag or variable that gave the token, to start an error message (the
// file's messages name its path themselves).
absl::string_view SourceName(TokenOrigin origin) {
  switch (origin) {
    case TokenOrigin::kNone:
      return "token";
    case TokenOrigin::kFlag:
      return "--token";
    case TokenOrigin::kEnv:
      return "CONVEYOR_TOKEN";
    case TokenOrigin::kFlagFile:
      return "--token-file";
    case TokenOrigin::kEnvFile:
      return "CONVEYOR_TOKEN_FILE";
    case TokenOrigin::kDefaultFile:
      return "the default token file";
  }
  return "token";
}

absl::Status WithSource(const TokenSource& source, const absl::Status& status) {
  return absl::Status(status.code(),
                      absl::StrCat(SourceName(source.origin), ": ", status.message()));
}

absl::StatusOr<BearerToken> FromValue(const std::string& value, TokenOrigin origin) {
  BearerToken token{value, TokenSource{origin, ""}};
  if (absl::Status valid = CheckTokenValue(value); !valid.ok()) {
    return WithSource(token.source, valid);
  }
  return token;
}

absl::StatusOr<BearerToken> FromFile(const std::string& path, TokenOrigin origin) {
  BearerToken token{"", TokenSource{origin, path}};
  absl::StatusOr<std::string> value = ReadTokenFile(path);
  if (!value.ok()) return WithSource(token.source, value.status());
  token.value = *std::move(value);
  return token;
}

}  // namespace

TokenInputs TokenInputsFromEnvironment(const std::string& flag_token,
                                       const std::string& flag_token_file) {
  TokenInputs inputs;
  inputs.flag_token = flag_token;
  inputs.flag_token_file = flag_token_file;
  inputs.env_token = Env("CONVEYOR_TOKEN");
  inputs.env_token_file = Env("CONVEYOR_TOKEN_FILE");
  inputs.xdg_config_home = Env("XDG_CONFIG_HOME");
  inputs.home = Env("HOME");
  return inputs;
}

std::string DefaultTokenPath(const TokenInputs& inputs) {
  if (absl::StartsWith(inputs.xdg_config_home, "/")) {
    return absl::StrCat(inputs.xdg_config_home, "/conveyor/token");
  }
  if (!inputs.home.empty()) return absl::StrCat(inputs.home, "/.config/conveyor/token");
  return "";
}

absl::StatusOr<BearerToken> ResolveToken(const TokenInputs& inputs) {
  if (!inputs.flag_token.empty()) return FromValue(inputs.flag_token, TokenOrigin::kFlag);
  if (!inputs.env_token.empty()) return FromValue(inputs.env_token, TokenOrigin::kEnv);
  if (!inputs.flag_token_file.empty()) {
    return FromFile(inputs.flag_token_file, TokenOrigin::kFlagFile);
  }
  if (!inputs.env_token_file.empty()) {
    return FromFile(inputs.env_token_file, TokenOrigin::kEnvFile);
  }
  BearerToken none{"", TokenSource{TokenOrigin::kNone, DefaultTokenPath(inputs)}};
  if (none.source.path.empty()) return none;
  absl::StatusOr<BearerToken> from_default = FromFile(none.source.path, TokenOrigin::kDefaultFile);
  // Only absence falls through to "no token": a default file that is there
  // but too open or unreadable is a mistake to report, not to ignore.
  if (absl::IsNotFound(from_default.status())) return none;
  return from_default;
}

std::string DescribeTokenSource(const TokenSource& source) {
  switch (source.origin) {
    case TokenOrigin::kNone:
      return "no token";
    case TokenOrigin::kFlag:
      return "--token";
    case TokenOrigin::kEnv:
      return "CONVEYOR_TOKEN";
    case TokenOrigin::kFlagFile:
      return absl::StrCat("--token-file ", source.path);
    case TokenOrigin::kEnvFile:
      return absl::StrCat("CONVEYOR_TOKEN_FILE=", source.path);
    case TokenOrigin::kDefaultFile:
      return absl::StrCat("the default token file ", source.path);
  }
  return "no token";
}

}  // namespace conveyor::client
