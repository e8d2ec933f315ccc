// `conveyor token new`: a fresh token for this CLI and the tokens-file line
// that admits it at the orchestrator. No server is involved.
#include <iostream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/cli_io.h"
#include "client/commands.h"
#include "client/new_token.h"
#include "client/token_file.h"
#include "client/token_source.h"

namespace conveyor::client {
namespace {

// The file the CLI reads when no token is given outright: --token-file,
// CONVEYOR_TOKEN_FILE, else the default. "" without HOME.
std::string TokenFileToWrite(const TokenInputs& inputs) {
  if (!inputs.flag_token_file.empty()) return inputs.flag_token_file;
  if (!inputs.env_token_file.empty()) return inputs.env_token_file;
  return DefaultTokenPath(inputs);
}

}  // namespace

int RunTokenNew(const GlobalOptions& global, const TokenNewOptions& options) {
  absl::StatusOr<std::string> token = NewToken();
  if (!token.ok()) return UsageError(token.status());
  absl::StatusOr<std::string> line =
      TokensFileLine(*token, TokenOwner{options.principal, options.tenant, options.scopes});
  if (!line.ok()) return UsageError(line.status());
  if (!options.write) {
    std::cout << *token << "\n" << std::flush;
    std::cerr << *line << "\n";
    return kExitOk;
  }
  // Saved, the token is not printed: it needs to be nowhere but the file,
  // and the line for the operator carries only its digest.
  const TokenInputs inputs = TokenInputsFromEnvironment(global.token, global.token_file);
  const std::string path = TokenFileToWrite(inputs);
  if (path.empty()) {
    return UsageError(absl::InvalidArgumentError(
        "--write: no token file to write: neither XDG_CONFIG_HOME nor HOME is set; pass "
        "--token-file PATH"));
  }
  if (absl::Status written = WriteNewTokenFile(path, *token); !written.ok()) {
    return UsageError(absl::Status(written.code(), absl::StrCat("--write: ", written.message())));
  }
  std::cerr << "token saved to " << path << " (mode 0600)\n";
  if (!inputs.flag_token.empty() || !inputs.env_token.empty()) {
    std::cerr << "note: " << (inputs.flag_token.empty() ? "CONVEYOR_TOKEN" : "--token")
              << " is set and wins over the file\n";
  }
  std::cerr << "the orchestrator's tokens file needs this line:\n" << *line << "\n";
  return kExitOk;
}

}  // namespace conveyor::client
