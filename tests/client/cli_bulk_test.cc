// The real `conveyor` binary's bulk verbs (retry / cancel by filter, list by
// stage and error reason, purge's confirmation) against a real stack on
// loopback: redis-server, conveyor-orchestrator and two
// conveyor-test-flaky-stage workers that fail while a file exists (resize:
// INTERNAL, filter: DATA_LOSS). The interactive prompt is driven through a
// real pseudo-terminal on stdin.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/client/no_token_env.h"
#include "tests/testing/command_runner.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::client {
namespace {

using ::conveyor::testing::CommandResult;
using ::conveyor::testing::Describe;
using ::conveyor::testing::LoopbackAddress;
using ::conveyor::testing::PickFreePort;
using ::conveyor::testing::RedisServer;
using ::conveyor::testing::RunCommand;
using ::conveyor::testing::ServerProcess;
using ::conveyor::testing::TempDir;
using ::conveyor::testing::WaitForGrpcServing;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kBin = CONVEYOR_BIN_DIR;

// A pseudo-terminal whose slave is the command's stdin, with `answer`
// already typed on it.
class TypedTerminal {
 public:
  explicit TypedTerminal(const std::string& answer) {
    master_ = ::posix_openpt(O_RDWR | O_NOCTTY);
    EXPECT_GE(master_, 0);
    EXPECT_EQ(::grantpt(master_), 0);
    EXPECT_EQ(::unlockpt(master_), 0);
    slave_path_ = ::ptsname(master_);
    // Kept open so that what is typed waits in the line discipline.
    slave_ = ::open(slave_path_.c_str(), O_RDWR | O_NOCTTY);
    EXPECT_GE(slave_, 0);
    EXPECT_EQ(::write(master_, answer.data(), answer.size()),
              static_cast<ssize_t>(answer.size()));
  }
  ~TypedTerminal() {
    ::close(slave_);
    ::close(master_);
  }
  const std::string& path() const { return slave_path_; }

 private:
  int master_ = -1;
  int slave_ = -1;
  std::string slave_path_;
};

class CliBulkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fail_resize_ = dir_.path() + "/fail-resize";
    fail_filter_ = dir_.path() + "/fail-filter";
    image_ = dir_.path() + "/in.jpg";
    cv::Mat img(48, 64, CV_8UC3);
    cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(255));
    cv::imwrite(image_, img);
    const std::string resize =
        Start("conveyor-test-flaky-stage",
              {"--fail-while-exists", fail_resize_, "--fail-code", "INTERNAL"});
    const std::string filter =
        Start("conveyor-test-flaky-stage",
              {"--fail-while-exists", fail_filter_, "--fail-code", "DATA_LOSS"});
    const std::string nowhere = LoopbackAddress(PickFreePort());
    orchestrator_ = Start("conveyor-orchestrator",
                          {"--redis-url", redis_.url(), "--download-target", nowhere,
                           "--resize-target", resize, "--filter-target", filter,
                           "--upload-target", nowhere, "--webhook-target", nowhere});
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stub_ = v1::Orchestrator::NewStub(
        grpc::CreateCustomChannel(orchestrator_, grpc::InsecureChannelCredentials(), args));
  }

  void TearDown() override {
    if (!HasFailure()) return;
    for (const std::string& log : logs_) {
      std::fprintf(stderr, "===== %s\n%s\n", log.c_str(),
                   conveyor::testing::ReadFile(log).c_str());
    }
  }

  std::string Start(const std::string& binary, std::vector<std::string> args) {
    std::vector<std::string> argv = {kBin + "/" + binary};
    argv.insert(argv.end(), args.begin(), args.end());
    logs_.push_back(absl::StrCat(dir_.path(), "/", binary, "-", logs_.size(), ".log"));
    processes_.push_back(std::make_unique<ServerProcess>(argv, logs_.back()));
    const std::string address = processes_.back()->address();
    const absl::Status serving = processes_.back()->WaitUntilServing();
    EXPECT_TRUE(serving.ok()) << binary << ": " << serving;
    return address;
  }

  CommandResult Cli(std::vector<std::string> args, const std::string& stdin_path = "") {
    std::vector<std::string> argv = {kBin + "/conveyor", "--server", orchestrator_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, absl::Seconds(60), NoTokenEnv(), stdin_path);
  }

  // Submits a one-step chain (resize or filter, one attempt) on the test
  // image with label run=`run`; returns its name.
  std::string Submit(const std::string& step, const std::string& run) {
    std::vector<std::string> args = {"submit", "--file", image_, "--max-attempts", "1",
                                     "--label", "run=" + run};
    if (step == "resize") {
      args.insert(args.end(), {"--resize", "16x"});
    } else {
      args.insert(args.end(), {"--filter", "grayscale"});
    }
    CommandResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return r.out.substr(0, r.out.find('\n'));
  }

  v1::Chain Get(const std::string& name) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetChainRequest req;
    req.set_name(name);
    v1::Chain chain;
    stub_->GetChain(&ctx, req, &chain);
    return chain;
  }

  void WaitState(const std::string& name, v1::State state) {
    const absl::Time until = absl::Now() + absl::Seconds(20);
    while (absl::Now() < until) {
      if (Get(name).state() == state) return;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << name << " never reached " << v1::State_Name(state) << ": "
                  << Get(name).ShortDebugString();
  }

  // Names from `conveyor list --json <args>`.
  std::set<std::string> ListNames(std::vector<std::string> args) {
    args.insert(args.begin(), {"list", "--json", "--limit", "1000"});
    CommandResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    v1::ListChainsResponse response;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &response).ok()) << r.out;
    std::set<std::string> names;
    for (const auto& c : response.chains()) names.insert(c.name());
    return names;
  }

  TempDir dir_;
  RedisServer redis_;
  std::vector<std::unique_ptr<ServerProcess>> processes_;
  std::vector<std::string> logs_;
  std::string fail_resize_, fail_filter_, image_, orchestrator_;
  std::unique_ptr<v1::Orchestrator::Stub> stub_;
};

TEST_F(CliBulkTest, FailedChainsAreADeadLetterQueueReplayedInOneCommand) {
  std::ofstream(fail_resize_) << "x";
  std::ofstream(fail_filter_) << "x";
  std::set<std::string> resize_failed, filter_failed;
  for (int i = 0; i < 3; ++i) resize_failed.insert(Submit("resize", "dlq"));
  for (int i = 0; i < 2; ++i) filter_failed.insert(Submit("filter", "dlq"));
  for (const auto& n : resize_failed) WaitState(n, v1::FAILED);
  for (const auto& n : filter_failed) WaitState(n, v1::FAILED);

  // list by stage and error reason.
  EXPECT_EQ(ListNames({"--label", "run=dlq", "--stage", "resize", "--error-reason", "INTERNAL"}),
            resize_failed);
  EXPECT_EQ(ListNames({"--label", "run=dlq", "--stage", "filter", "--error-reason", "data_loss"}),
            filter_failed);
  CommandResult none =
      Cli({"list", "--label", "run=dlq", "--stage", "resize", "--error-reason", "DATA_LOSS"});
  EXPECT_EQ(none.exit_code, 0);
  EXPECT_EQ(none.out, "No chains.\n");
  CommandResult bad_stage = Cli({"list", "--stage", "thumbnail"});
  EXPECT_EQ(bad_stage.exit_code, 2);
  EXPECT_THAT(bad_stage.err, HasSubstr("--stage: want one of download, resize, filter"));

  const std::vector<std::string> retry = {"retry", "--state", "failed", "--stage", "resize",
                                          "--label", "run=dlq"};
  // No terminal on stdin and no --yes: refused, nothing changed.
  CommandResult refused = Cli(retry);
  EXPECT_EQ(refused.exit_code, 2) << Describe(refused);
  EXPECT_THAT(refused.err,
              HasSubstr("refusing to retry 3 chains without confirmation: stdin is not a "
                        "terminal. Pass --yes"));
  // The dry run names exactly those, and changes nothing either.
  std::vector<std::string> dry_args = retry;
  dry_args.push_back("--dry-run");
  CommandResult dry = Cli(dry_args);
  EXPECT_EQ(dry.exit_code, 0) << Describe(dry);
  EXPECT_THAT(dry.out, StartsWith("Would retry 3 chains of 3 matching (dry run, nothing "
                                  "changed)\n"));
  for (const auto& n : resize_failed) {
    EXPECT_THAT(dry.out, HasSubstr("  " + n + "\n"));
    EXPECT_EQ(Get(n).state(), v1::FAILED);
    EXPECT_EQ(Get(n).retries(), 0);
  }

  // The worker is back: replay them, --yes as a script would.
  std::filesystem::remove(fail_resize_);
  std::vector<std::string> yes_args = retry;
  yes_args.push_back("--yes");
  CommandResult done = Cli(yes_args);
  EXPECT_EQ(done.exit_code, 0) << Describe(done);
  EXPECT_THAT(done.out, StartsWith("Retried 3 chains of 3 matching\n"));
  for (const auto& n : resize_failed) WaitState(n, v1::SUCCEEDED);
  for (const auto& n : filter_failed) {
    EXPECT_EQ(Get(n).state(), v1::FAILED);
    EXPECT_EQ(Get(n).retries(), 0);
  }
  EXPECT_TRUE(
      ListNames({"--label", "run=dlq", "--state", "failed", "--stage", "resize"}).empty());

  // A name or a filter, not both, not neither.
  CommandResult neither = Cli({"retry"});
  EXPECT_EQ(neither.exit_code, 2);
  EXPECT_THAT(neither.err, HasSubstr("give a chain name, or at least one filter flag"));
  CommandResult both = Cli({"cancel", *filter_failed.begin(), "--state", "failed"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_THAT(both.err, HasSubstr("not both"));
  // Cancelling by filter when nothing can be cancelled asks nothing.
  CommandResult nothing = Cli({"cancel", "--label", "run=dlq"});
  EXPECT_EQ(nothing.exit_code, 0) << Describe(nothing);
  EXPECT_THAT(nothing.out, StartsWith("Cancelled 0 chains of 5 matching; 5 skipped"));
}

TEST_F(CliBulkTest, PromptOnATerminalAsksAndHonoursTheAnswer) {
  std::ofstream(fail_filter_) << "x";
  std::set<std::string> failed;
  for (int i = 0; i < 2; ++i) failed.insert(Submit("filter", "tty"));
  for (const auto& n : failed) WaitState(n, v1::FAILED);
  std::filesystem::remove(fail_filter_);
  const std::vector<std::string> retry = {"retry", "--state", "failed", "--label", "run=tty"};
  {
    TypedTerminal terminal("n\n");
    CommandResult no = Cli(retry, terminal.path());
    EXPECT_EQ(no.exit_code, 1) << Describe(no);
    EXPECT_THAT(no.err, HasSubstr("Retry 2 chains? [y/N] "));
    EXPECT_THAT(no.err, HasSubstr("Nothing changed."));
    EXPECT_EQ(no.out, "");
  }
  for (const auto& n : failed) EXPECT_EQ(Get(n).state(), v1::FAILED);
  {
    TypedTerminal terminal("y\n");
    CommandResult yes = Cli(retry, terminal.path());
    EXPECT_EQ(yes.exit_code, 0) << Describe(yes);
    EXPECT_THAT(yes.err, HasSubstr("Retry 2 chains? [y/N] "));
    EXPECT_THAT(yes.out, StartsWith("Retried 2 chains of 2 matching\n"));
  }
  for (const auto& n : failed) WaitState(n, v1::SUCCEEDED);
}

TEST_F(CliBulkTest, PurgeAsksUnlessYesAndDryRunNeverAsks) {
  const std::string name = Submit("resize", "purge");
  WaitState(name, v1::SUCCEEDED);
  const std::vector<std::string> purge = {"purge", "--state", "succeeded"};
  CommandResult refused = Cli(purge);
  EXPECT_EQ(refused.exit_code, 2) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("refusing to purge 1 chain without confirmation"));
  EXPECT_EQ(Get(name).state(), v1::SUCCEEDED);
  CommandResult dry = Cli({"purge", "--state", "succeeded", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << Describe(dry);
  EXPECT_THAT(dry.out, StartsWith("Would purge 1 chain"));
  EXPECT_EQ(dry.err, "");
  {
    TypedTerminal terminal("\n");  // Enter: the default is no
    CommandResult no = Cli(purge, terminal.path());
    EXPECT_EQ(no.exit_code, 1) << Describe(no);
    EXPECT_THAT(no.err, HasSubstr("Purge 1 chain? [y/N] "));
  }
  EXPECT_EQ(Get(name).state(), v1::SUCCEEDED);
  std::vector<std::string> yes_args = purge;
  yes_args.push_back("--yes");
  CommandResult yes = Cli(yes_args);
  EXPECT_EQ(yes.exit_code, 0) << Describe(yes);
  EXPECT_THAT(yes.out, StartsWith("Purged 1 chain\n"));
  CommandResult gone = Cli({"get", name});
  EXPECT_EQ(gone.exit_code, 3);
  EXPECT_THAT(gone.err, HasSubstr("NOT_FOUND"));
  // Nothing left to purge: nothing to ask either.
  CommandResult empty = Cli(purge);
  EXPECT_EQ(empty.exit_code, 0) << Describe(empty);
  EXPECT_EQ(empty.out, "No chains to purge.\n");
}

}  // namespace
}  // namespace conveyor::client
