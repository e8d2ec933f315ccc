// Tokens files for tests: the line of a bearer token, and a real
// Authenticator reading a tokens file (docs/security.md, "Caller identity").
#ifndef CONVEYOR_TESTS_ORCHESTRATOR_AUTH_TOKENS_FIXTURE_H_
#define CONVEYOR_TESTS_ORCHESTRATOR_AUTH_TOKENS_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "orchestrator/auth/authenticator.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::testing {

// "sha256:<hex of token> <rest>\n", `rest` being "principal tenant scopes".
inline std::string TokensFileLine(const std::string& token, const std::string& rest) {
  return absl::StrCat("sha256:", Sha256Hex(token), " ", rest, "\n");
}

// Writes `lines` to `path` and returns an Authenticator reading it (null,
// with a test failure, if it cannot be made).
inline std::unique_ptr<orchestrator::auth::Authenticator> WriteTokensFileAuthenticator(
    const std::string& path, const std::string& lines, const orchestrator::Clock& clock) {
  WriteFile(path, lines);
  orchestrator::auth::AuthOptions options;
  options.tokens_file = path;
  absl::StatusOr<std::unique_ptr<orchestrator::auth::Authenticator>> made =
      orchestrator::auth::Authenticator::Create(options, clock);
  EXPECT_TRUE(made.ok()) << made.status();
  return made.ok() ? *std::move(made) : nullptr;
}

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_ORCHESTRATOR_AUTH_TOKENS_FIXTURE_H_
