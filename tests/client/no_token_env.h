// The environment the CLI end-to-end tests run `conveyor` in.
#ifndef CONVEYOR_TESTS_CLIENT_NO_TOKEN_ENV_H_
#define CONVEYOR_TESTS_CLIENT_NO_TOKEN_ENV_H_

#include <string>
#include <vector>

namespace conveyor::client {

// None of the runner's own token sources (client/token_source.h): a
// developer's CONVEYOR_TOKEN or ~/.config/conveyor/token, valid or too
// open, must not change what a test sees. /dev/null/conveyor/token can
// never exist.
inline std::vector<std::string> NoTokenEnv() {
  return {"CONVEYOR_TOKEN=", "CONVEYOR_TOKEN_FILE=", "XDG_CONFIG_HOME=/dev/null"};
}

}  // namespace conveyor::client

#endif  // CONVEYOR_TESTS_CLIENT_NO_TOKEN_ENV_H_
