// The real `conveyor` binary and its bearer token: `token new`, and the
// refusal of a token file others may read. No server is needed for these.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"
#include "tests/testing/command_runner.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::client {
namespace {

using ::conveyor::testing::CommandResult;
using ::conveyor::testing::Describe;
using ::conveyor::testing::RunCommand;
using ::conveyor::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

const std::string kBin = CONVEYOR_BIN_DIR;

mode_t ModeOf(const std::string& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

class CliTokenTest : public ::testing::Test {
 protected:
  // `conveyor args...` in a home of the test's own, with no token in the
  // environment.
  CommandResult Conveyor(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), kBin + "/conveyor");
    env.insert(env.begin(), {"HOME=" + home(), "XDG_CONFIG_HOME=", "CONVEYOR_TOKEN=",
                             "CONVEYOR_TOKEN_FILE=", "USER=tester"});
    return RunCommand(args, absl::Seconds(30), env);
  }
  std::string home() const { return dir_.path(); }
  std::string DefaultTokenFile() const { return home() + "/.config/conveyor/token"; }

  TempDir dir_;
};

TEST_F(CliTokenTest, TokenNewPrintsTokenAndTheLineWithItsDigest) {
  CommandResult r = Conveyor({"token", "new", "--principal", "ci", "--tenant", "web", "--scopes",
                              "chains.submit,chains.read"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  ASSERT_THAT(r.out, MatchesRegex("[0-9a-f]{64}\n"));
  const std::string token = r.out.substr(0, 64);
  EXPECT_EQ(r.err,
            absl::StrCat("sha256:", Sha256Hex(token), " ci web chains.submit,chains.read\n"));
  EXPECT_FALSE(std::filesystem::exists(DefaultTokenFile()));
}

TEST_F(CliTokenTest, TokenNewDefaultsToTheUserAndEverythingButAdmin) {
  CommandResult r = Conveyor({"token", "new"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(
      r.err,
      MatchesRegex("sha256:[0-9a-f]{64} tester default chains.submit,chains.read,chains.cancel\n"));
}

TEST_F(CliTokenTest, TokenNewWriteSavesItPrivatelyAndPrintsOnlyTheLine) {
  CommandResult r = Conveyor({"token", "new", "--write"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(ModeOf(DefaultTokenFile()), 0600u);
  std::ifstream in(DefaultTokenFile());
  std::string token;
  std::getline(in, token);
  ASSERT_THAT(token, MatchesRegex("[0-9a-f]{64}"));
  EXPECT_THAT(r.err, AllOf(HasSubstr("token saved to " + DefaultTokenFile()),
                           HasSubstr(absl::StrCat("sha256:", Sha256Hex(token), " tester ")),
                           Not(HasSubstr(token))));

  // A second --write must not lose the first token.
  CommandResult again = Conveyor({"token", "new", "--save"});
  EXPECT_EQ(again.exit_code, 2) << Describe(again);
  EXPECT_THAT(again.err, HasSubstr("exists; remove it first"));
  std::ifstream still(DefaultTokenFile());
  std::string kept;
  std::getline(still, kept);
  EXPECT_EQ(kept, token);
}

TEST_F(CliTokenTest, TokenNewWriteHonoursTokenFile) {
  const std::string path = home() + "/elsewhere/token";
  CommandResult r = Conveyor({"--token-file", path, "token", "new", "--write"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_FALSE(std::filesystem::exists(DefaultTokenFile()));
}

TEST_F(CliTokenTest, TokenNewRefusesAnUnknownScope) {
  CommandResult r = Conveyor({"token", "new", "--scopes", "chains.read,chains.delete"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("--scopes: want a comma-separated list of chains.submit"));
}

TEST_F(CliTokenTest, TokenFileOthersCanReadIsAUsageError) {
  const std::string path = home() + "/token";
  std::ofstream(path) << "do-not-print-me\n";
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  // Refused before any call: the server address does not matter.
  for (const auto& [args, env] :
       std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>>{
           {{"--insecure", "--server", "127.0.0.1:1", "--token-file", path, "status"}, {}},
           {{"--insecure", "--server", "127.0.0.1:1", "status"},
            {"CONVEYOR_TOKEN_FILE=" + path}}}) {
    CommandResult r = Conveyor(args, env);
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    EXPECT_THAT(r.err, AllOf(HasSubstr("permissions 0644 for \"" + path + "\" are too open"),
                             HasSubstr("chmod 600 " + path), Not(HasSubstr("do-not-print-me"))));
  }
}

TEST_F(CliTokenTest, HelpShowsNoToken) {
  CommandResult r = Conveyor({"--help"}, {"CONVEYOR_TOKEN=do-not-print-me"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, AllOf(HasSubstr("--token-file"), Not(HasSubstr("do-not-print-me"))));
}

}  // namespace
}  // namespace conveyor::client
