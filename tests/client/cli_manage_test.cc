// The real `conveyor` binary against a real stack (fixture: cli_fixture.h):
// list, cancel, watch across a replica restart, retry, batch, status,
// purge, bench.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/error_details.pb.h"
#include "tests/client/cli_fixture.h"
#include "tests/testing/command_runner.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::client {
namespace {

using ::conveyor::testing::CommandResult;
using ::conveyor::testing::LoopbackAddress;
using ::conveyor::testing::RunCommand;
using ::conveyor::testing::ServerProcess;
using ::conveyor::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST_F(CliTest, ListFiltersByLabelStateTimeAndPages) {
  const std::string run = absl::StrCat("list", absl::ToUnixNanos(absl::Now()));
  std::vector<std::string> names;
  for (const char* group : {"a", "a", "b"}) {
    CommandResult r = Cli({"submit", "--url", Url("/img.jpg"), "--resize", "20x", "--label",
                           "run=" + run, "--label", std::string("group=") + group, "--wait"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    names.push_back(FirstLine(r.out));
  }
  const auto list = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"list", "--json", "--label", "run=" + run});
    CommandResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    v1::ListChainsResponse response;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &response).ok()) << r.out;
    return response;
  };
  v1::ListChainsResponse all = list({});
  ASSERT_EQ(all.chains_size(), 3);
  EXPECT_EQ(all.chains(0).name(), names[2]);  // newest first
  EXPECT_EQ(list({"--label", "group=a"}).chains_size(), 2);
  EXPECT_EQ(list({"--state", "succeeded"}).chains_size(), 3);
  EXPECT_EQ(list({"--state", "failed"}).chains_size(), 0);
  EXPECT_EQ(list({"--since", "10m"}).chains_size(), 3);
  EXPECT_EQ(list({"--before", "10m"}).chains_size(), 0);
  v1::ListChainsResponse page1 = list({"--limit", "2"});
  ASSERT_EQ(page1.chains_size(), 2);
  ASSERT_FALSE(page1.next_page_token().empty());
  v1::ListChainsResponse page2 = list({"--limit", "2", "--page-token", page1.next_page_token()});
  ASSERT_EQ(page2.chains_size(), 1);
  EXPECT_EQ(page2.chains(0).name(), names[0]);

  CommandResult table = Cli({"list", "--label", "run=" + run});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_THAT(table.out, AllOf(StartsWith("CHAIN"), HasSubstr("SUCCEEDED"),
                               HasSubstr("download>resize"), HasSubstr("group=a,run=" + run)));
  CommandResult bad = Cli({"list", "--state", "done"});
  EXPECT_EQ(bad.exit_code, 2);
}

TEST_F(CliTest, CancelStopsARunningChain) {
  CommandResult r = Cli({"submit", "--url", Url("/slow.jpg"), "--resize", "10x"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const std::string name = FirstLine(r.out);
  CommandResult cancel = Cli({"cancel", name});
  ASSERT_EQ(cancel.exit_code, 0) << Describe(cancel);
  EXPECT_EQ(cancel.out, name + " CANCELLED\n");
  CommandResult watch = Cli({"watch", name});
  EXPECT_EQ(watch.exit_code, 1) << Describe(watch);
  EXPECT_THAT(watch.out, HasSubstr(name + " CANCELLED"));
}

TEST_F(CliTest, WatchReconnectsWhenItsReplicaRestarts) {
  // A second coordinator replica, which the CLI talks to and which is
  // killed (-9) and restarted on the same port while `watch` streams.
  std::vector<std::string> argv = {kBin + "/conveyor-orchestrator", "--lease-timeout", "1s"};
  argv.insert(argv.end(), stack_->orchestrator_flags.begin(), stack_->orchestrator_flags.end());
  TempDir logs;
  auto replica = std::make_unique<ServerProcess>(argv, logs.path() + "/replica.log");
  const int port = replica->port();
  ASSERT_TRUE(replica->WaitUntilServing().ok()) << replica->started();
  const std::vector<std::string> cli = {kBin + "/conveyor", "--server", LoopbackAddress(port)};

  std::vector<std::string> submit = cli;
  submit.insert(submit.end(), {"submit", "--url", Url("/slow2.jpg"), "--resize", "10x"});
  CommandResult submitted = RunCommand(submit, absl::Seconds(60), NoTokenEnv());
  ASSERT_EQ(submitted.exit_code, 0) << Describe(submitted);
  const std::string name = FirstLine(submitted.out);

  CommandResult watch;
  std::vector<std::string> watch_argv = cli;
  watch_argv.insert(watch_argv.end(), {"watch", name});
  std::thread watcher([&] { watch = RunCommand(watch_argv, absl::Seconds(90), NoTokenEnv()); });
  // The download takes 1.5 s; by 0.5 s the watch is streaming.
  absl::SleepFor(absl::Milliseconds(500));
  replica->process().Kill();
  replica = std::make_unique<ServerProcess>(argv, logs.path() + "/replica2.log",
                                            std::vector<std::string>{}, port);
  watcher.join();
  EXPECT_EQ(watch.exit_code, 0) << Describe(watch)
                                << conveyor::testing::ReadFile(logs.path() + "/replica.log");
  EXPECT_THAT(watch.out, HasSubstr(name + " SUCCEEDED"));
  EXPECT_EQ(watch.err, "");
}

TEST_F(CliTest, RetryResumesAFailedChain) {
  stack_->flaky_calls = 0;
  CommandResult r = Cli(
      {"submit", "--url", Url("/flaky.jpg"), "--resize", "30x", "--max-attempts", "1", "--wait"});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  const std::string name = FirstLine(r.out);
  CommandResult retry = Cli({"retry", name, "--wait"});
  EXPECT_EQ(retry.exit_code, 0) << Describe(retry);
  EXPECT_THAT(retry.out, HasSubstr(name + " SUCCEEDED"));
  v1::Chain chain = GetChain(name);
  EXPECT_EQ(chain.state(), v1::SUCCEEDED);
  EXPECT_EQ(chain.retries(), 1);
  // Retrying a chain that succeeded is refused by the server.
  CommandResult again = Cli({"retry", name});
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_THAT(again.err, StartsWith("error: FAILED_PRECONDITION: "));
}

TEST_F(CliTest, BatchReportsEachGoodAndBadItem) {
  TempDir dir;
  const std::string local = dir.path() + "/local.jpg";
  WriteFile(local, MakeJpeg(64, 48, false));
  const std::string list = dir.path() + "/items.txt";
  WriteFile(list, absl::StrCat("# two good URLs, a 404, a missing file, a local file\n",
                               Url("/img.jpg"), "\n", Url("/img.jpg"), "\n\n", Url("/missing.jpg"),
                               "\n", dir.path(), "/nope.jpg\n", local, "\n"));
  CommandResult r = Cli({"batch", list, "--resize", "16x", "--max-attempts", "1", "--concurrency",
                         "3", "--upload", OutUri()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("5 chains: 3 succeeded, 2 failed in "));
  EXPECT_THAT(r.out, HasSubstr("chains/s)"));
  EXPECT_THAT(r.out, HasSubstr(Url("/missing.jpg") + ": FAILED: NOT_FOUND"));
  EXPECT_THAT(r.out, HasSubstr(dir.path() + "/nope.jpg: file: cannot read"));
  int ok_lines = 0;
  for (absl::string_view line : absl::StrSplit(r.out, '\n'))
    ok_lines += absl::StartsWith(line, "ok ");
  EXPECT_EQ(ok_lines, 3);

  // A directory of images, all good.
  CommandResult from_dir = Cli({"batch", dir.path(), "--filter", "invert"});
  EXPECT_EQ(from_dir.exit_code, 0) << Describe(from_dir);
  EXPECT_THAT(from_dir.out, HasSubstr("1 chains: 1 succeeded, 0 failed"));
}

TEST_F(CliTest, StatusShowsStagesAndRedis) {
  CommandResult r = Cli({"status"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, AllOf(StartsWith("STAGE"), HasSubstr("download"), HasSubstr("webhook"),
                           HasSubstr("SERVING"), HasSubstr("Redis: reachable")));
  CommandResult json = Cli({"status", "--json"});
  ASSERT_EQ(json.exit_code, 0);
  v1::SystemStatus status;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &status).ok()) << json.out;
  EXPECT_EQ(status.stages_size(), 5);
  EXPECT_TRUE(status.redis_reachable());
}

TEST_F(CliTest, PurgeDryRunCountsAndDeletesNothing) {
  CommandResult r = Cli({"submit", "--url", Url("/img.jpg"), "--resize", "8x", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const std::string name = FirstLine(r.out);
  CommandResult dry = Cli({"purge", "--state", "succeeded", "--dry-run", "--json"});
  ASSERT_EQ(dry.exit_code, 0) << Describe(dry);
  v1::PurgeChainsResponse response;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(dry.out, &response).ok()) << dry.out;
  EXPECT_GE(response.purged_count(), 1);
  EXPECT_EQ(GetChain(name).state(), v1::SUCCEEDED);  // still there
  CommandResult bad = Cli({"purge", "--state", "running"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("want one of succeeded, failed, cancelled"));
}

#ifdef CONVEYOR_HAVE_BENCH
TEST_F(CliTest, BenchRunsAScenarioAndReports) {
  const pid_t orchestrator_pid = stack_->processes.back()->process().pid();
  CommandResult r = RunCommand(
      {kBin + "/conveyor-bench", "--server", stack_->orchestrator, "--scenario", "tiny", "--chains",
       "6", "--concurrency", "2", "--runs", "2", "--warmup", "1", "--upload-dir", stack_->out_dir,
       "--pid", absl::StrCat("conveyor-orchestrator=", orchestrator_pid)},
      absl::Seconds(120));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("| tiny | 2 | "));
  EXPECT_THAT(r.out, HasSubstr("download "));
  EXPECT_THAT(r.out, HasSubstr(" | 0 |\n"));  // no failures
  EXPECT_THAT(r.out, ::testing::ContainsRegex("CPU ms per chain: conveyor-orchestrator=[0-9.]+"));
  EXPECT_THAT(r.out,
              ::testing::ContainsRegex("Peak RSS \\(VmHWM\\): conveyor-orchestrator=[0-9.]+ MiB"));
}
#endif  // CONVEYOR_HAVE_BENCH

}  // namespace
}  // namespace conveyor::client
