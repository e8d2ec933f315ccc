// The real `conveyor` binary against a real orchestrator that authenticates
// callers (--tokens-file): tokens made by `conveyor token new`, sent from
// each source, refused with the hints, and a missing scope named.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tests/testing/command_runner.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::client {
namespace {

using ::conveyor::testing::CommandResult;
using ::conveyor::testing::Describe;
using ::conveyor::testing::OrchestratorProcess;
using ::conveyor::testing::RedisServer;
using ::conveyor::testing::RunCommand;
using ::conveyor::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

const std::string kBin = CONVEYOR_BIN_DIR;

// One orchestrator for the suite, admitting two tokens of tenant acme:
// `full` (saved in the home's default token file, every chains.* scope)
// and `no_cancel` (chains.submit and chains.read only). No workers: the
// chains stay pending, which is all cancel needs.
class CliAuthTest : public ::testing::Test {
 protected:
  struct Stack {
    TempDir dir;
    RedisServer redis;
    std::unique_ptr<OrchestratorProcess> orchestrator;
    std::string home, empty_config, image;
    std::string no_cancel;  // the token, as `token new` printed it
    absl::Status ready;     // of the stack: each test checks it
  };
  static inline Stack* stack_ = nullptr;

  static void SetUpTestSuite() {
    stack_ = new Stack();
    stack_->ready = StartStack(*stack_);
  }

  // Fails each test, not the suite: gtest reports a fatal failure in
  // SetUpTestSuite as tests skipped, which ctest counts as passed.
  void SetUp() override { ASSERT_TRUE(stack_->ready.ok()) << stack_->ready; }

  static absl::Status StartStack(Stack& s) {
    s.home = s.dir.path() + "/home";
    s.empty_config = s.dir.path() + "/empty-config";
    std::filesystem::create_directories(s.home);
    std::filesystem::create_directories(s.empty_config);
    s.image = s.dir.path() + "/in.jpg";
    cv::Mat image(24, 32, CV_8UC3, cv::Scalar(10, 200, 30));
    if (!cv::imwrite(s.image, image)) return absl::InternalError("cannot write " + s.image);

    // The lines come from the CLI itself: if its digest or field order ever
    // drifted from what the server parses, these tokens would not work.
    CommandResult full = Cli({"token", "new", "--write", "--principal", "alice", "--tenant", "acme",
                              "--scopes", "chains.submit,chains.read,chains.cancel"});
    if (full.exit_code != 0) return absl::InternalError("token new --write: " + Describe(full));
    CommandResult no_cancel = Cli({"token", "new", "--principal", "bob", "--tenant", "acme",
                                   "--scopes", "chains.submit,chains.read"});
    if (no_cancel.exit_code != 0) return absl::InternalError("token new: " + Describe(no_cancel));
    s.no_cancel = std::string(absl::StripSuffix(no_cancel.out, "\n"));
    const std::string tokens_file = s.dir.path() + "/tokens";
    std::ofstream(tokens_file) << LastLine(full.err) << "\n" << no_cancel.err;
    ::chmod(tokens_file.c_str(), 0600);

    const std::string log = s.dir.path() + "/orchestrator.log";
    s.orchestrator = std::make_unique<OrchestratorProcess>(
        s.redis.url(), std::map<std::string, std::string>{},
        std::vector<std::string>{"--tokens-file", tokens_file}, log);
    if (!s.orchestrator->ready().ok()) {
      return absl::Status(
          s.orchestrator->ready().code(),
          absl::StrCat(s.orchestrator->ready().message(), "\n", conveyor::testing::ReadFile(log)));
    }
    return absl::OkStatus();
  }

  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }

  static std::string LastLine(const std::string& text) {
    absl::string_view rest = absl::StripSuffix(text, "\n");
    return std::string(rest.substr(rest.rfind('\n') + 1));
  }

  // `conveyor args...` with the suite's home (its default token file holds
  // `full`) and no token in the environment, plus `env`.
  static CommandResult Cli(std::vector<std::string> args, std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {kBin + "/conveyor"};
    if (stack_->orchestrator != nullptr) {
      argv.insert(argv.end(), {"--server", stack_->orchestrator->address()});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    env.insert(env.begin(), {"HOME=" + stack_->home,
                             "XDG_CONFIG_HOME=", "CONVEYOR_TOKEN=", "CONVEYOR_TOKEN_FILE="});
    return RunCommand(argv, absl::Seconds(60), env);
  }
  // As Cli, but the default token file is looked for where there is none.
  static CommandResult CliWithoutDefaultToken(std::vector<std::string> args,
                                              std::vector<std::string> env = {}) {
    env.push_back("XDG_CONFIG_HOME=" + stack_->empty_config);
    return Cli(std::move(args), std::move(env));
  }

  // A pending chain, submitted (streamed: StreamSubmitChain) with `full`.
  static std::string SubmitChain() {
    CommandResult r = Cli({"submit", "--file", stack_->image, "--resize", "16x"});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return std::string(absl::StripSuffix(r.out, "\n"));
  }
};

TEST_F(CliAuthTest, RightTokenFromEachSourceSucceeds) {
  const std::string chain = SubmitChain();  // the default file
  ASSERT_THAT(chain, StartsWith("chains/"));
  // --token, CONVEYOR_TOKEN and --token-file, with the token that may read.
  const std::string file = stack_->dir.path() + "/bob-token";
  std::ofstream(file) << stack_->no_cancel << "\n";
  ASSERT_EQ(::chmod(file.c_str(), 0600), 0);
  for (const auto& [args, env] :
       std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>>{
           {{"--token", stack_->no_cancel, "get", chain}, {}},
           {{"get", chain}, {"CONVEYOR_TOKEN=" + stack_->no_cancel}},
           {{"--token-file", file, "get", chain}, {}},
           {{"get", chain}, {"CONVEYOR_TOKEN_FILE=" + file}}}) {
    CommandResult r = CliWithoutDefaultToken(args, env);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, HasSubstr(chain));
  }
  CommandResult list = Cli({"list", "--json"});
  EXPECT_EQ(list.exit_code, 0) << Describe(list);
  EXPECT_THAT(list.out, HasSubstr(chain));
  // WatchChain too: authenticated, it runs until --max-wait.
  CommandResult watch = Cli({"watch", chain, "--max-wait", "1s"});
  EXPECT_EQ(watch.exit_code, 3) << Describe(watch);
  EXPECT_THAT(watch.err, HasSubstr("DEADLINE_EXCEEDED"));
}

TEST_F(CliAuthTest, NoTokenIsUnauthenticatedWithTheHint) {
  CommandResult r = CliWithoutDefaultToken({"list"});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err,
              AllOf(StartsWith("error: UNAUTHENTICATED: "), HasSubstr("\nhint: no token was sent"),
                    HasSubstr("--token"), HasSubstr(stack_->empty_config + "/conveyor/token")));
  // The streams too.
  CommandResult submit =
      CliWithoutDefaultToken({"submit", "--file", stack_->image, "--resize", "16x"});
  EXPECT_EQ(submit.exit_code, 3) << Describe(submit);
  EXPECT_THAT(submit.err, StartsWith("error: UNAUTHENTICATED: "));
  CommandResult watch =
      CliWithoutDefaultToken({"watch", "chains/0123456789abcdef0123456789abcdef"});
  EXPECT_EQ(watch.exit_code, 3) << Describe(watch);
  EXPECT_THAT(watch.err, StartsWith("error: UNAUTHENTICATED: "));
}

TEST_F(CliAuthTest, UnknownTokenIsUnauthenticatedNamingItsSource) {
  CommandResult r = Cli({"list"}, {"CONVEYOR_TOKEN=0000not-a-known-token"});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, AllOf(StartsWith("error: UNAUTHENTICATED: "),
                           HasSubstr("hint: the server did not accept the token from "
                                     "CONVEYOR_TOKEN "),
                           Not(HasSubstr("0000not-a-known-token"))));
}

TEST_F(CliAuthTest, TokenFileOthersCanReadIsRefusedBeforeAnyCall) {
  const std::string file = stack_->dir.path() + "/open-token";
  std::ofstream(file) << stack_->no_cancel << "\n";
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  CommandResult r = Cli({"--token-file", file, "list"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err, AllOf(HasSubstr("permissions 0644"), HasSubstr("chmod 600 " + file),
                           Not(HasSubstr(stack_->no_cancel))));
}

TEST_F(CliAuthTest, TokenWithoutCancelScopeGetsThePermissionHint) {
  const std::string chain = SubmitChain();
  CommandResult r = CliWithoutDefaultToken({"--token", stack_->no_cancel, "cancel", chain});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, AllOf(StartsWith("error: PERMISSION_DENIED: "), HasSubstr("chains.cancel"),
                           HasSubstr("hint: the token from --token lacks scope chains.cancel")));
  // The token that has it cancels.
  CommandResult ok = Cli({"cancel", chain});
  EXPECT_EQ(ok.exit_code, 0) << Describe(ok);
  EXPECT_THAT(ok.out, HasSubstr("CANCELLED"));
}

}  // namespace
}  // namespace conveyor::client
