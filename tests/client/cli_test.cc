// The real `conveyor` binary against a real stack on loopback: redis-server,
// the five workers and the orchestrator from CONVEYOR_BIN_DIR, and an HTTP
// server (images, a 404, a slow URL, a flaky URL, a webhook receiver).
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
#include "tests/testing/command_runner.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/webhook_secrets_file.h"

namespace conveyor::client {
namespace {

using ::conveyor::testing::CommandResult;
using ::conveyor::testing::HttpTestServer;
using ::conveyor::testing::LoopbackAddress;
using ::conveyor::testing::PickFreePort;
using ::conveyor::testing::RedisServer;
using ::conveyor::testing::RunCommand;
using ::conveyor::testing::ScopedProcess;
using ::conveyor::testing::ServerProcess;
using ::conveyor::testing::TempDir;
using ::conveyor::testing::WaitForGrpcServing;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

const std::string kBin = CONVEYOR_BIN_DIR;

std::string MakeJpeg(int width, int height, bool noise) {
  cv::Mat image(height, width, CV_8UC3);
  if (noise) {
    cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
  } else {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        image.at<cv::Vec3b>(y, x) = cv::Vec3b(x % 256, y % 256, (x + y) % 256);
      }
    }
  }
  std::vector<uchar> bytes;
  cv::imencode(".jpg", image, bytes, {cv::IMWRITE_JPEG_QUALITY, 95});
  return std::string(bytes.begin(), bytes.end());
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// One stack for the whole suite: starting it takes a second or two.
class CliTest : public ::testing::Test {
 protected:
  struct Stack {
    TempDir dir;
    conveyor::testing::WebhookSecretsFile webhook_secrets;
    RedisServer redis;
    std::vector<std::unique_ptr<ServerProcess>> processes;
    std::string orchestrator;
    std::vector<std::string> orchestrator_flags;  // --redis-url and the targets
    std::string out_dir;
    std::string image;
    std::atomic<int> flaky_calls{0};
    std::atomic<int> webhooks{0};
    // Last, so destroyed first: its handler threads read `image` and the
    // counters until it has stopped (ASan: heap-use-after-free otherwise,
    // from a /slow.jpg handler woken by the teardown).
    HttpTestServer http;
  };
  static inline Stack* stack_ = nullptr;

  static void SetUpTestSuite() {
    stack_ = new Stack();
    Stack& s = *stack_;
    s.out_dir = s.dir.path() + "/out";
    std::filesystem::create_directories(s.out_dir);
    s.image = MakeJpeg(320, 240, false);

    s.http.http().Get("/img.jpg", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(stack_->image, "image/jpeg");
    });
    s.http.http().Get("/missing.jpg",
                      [](const httplib::Request&, httplib::Response& res) { res.status = 404; });
    s.http.http().Get("/slow2.jpg", [](const httplib::Request&, httplib::Response& res) {
      stack_->http.SleepUnlessStopping(absl::Milliseconds(1500));
      res.set_content(stack_->image, "image/jpeg");
    });
    s.http.http().Get("/slow.jpg", [](const httplib::Request&, httplib::Response& res) {
      stack_->http.SleepUnlessStopping(absl::Seconds(20));
      res.set_content(stack_->image, "image/jpeg");
    });
    // 404 on the first call, the image afterwards: a chain that fails, then
    // succeeds on `conveyor retry`.
    s.http.http().Get("/flaky.jpg", [](const httplib::Request&, httplib::Response& res) {
      if (stack_->flaky_calls++ == 0) {
        res.status = 404;
        return;
      }
      res.set_content(stack_->image, "image/jpeg");
    });
    s.http.http().Post("/hook", [](const httplib::Request&, httplib::Response& res) {
      ++stack_->webhooks;
      res.status = 200;
    });
    s.http.Start();

    const auto start = [&](const std::string& name, std::vector<std::string> args,
                           std::vector<std::string> env = {}) {
      std::vector<std::string> argv = {kBin + "/" + name};
      argv.insert(argv.end(), args.begin(), args.end());
      s.processes.push_back(std::make_unique<ServerProcess>(
          argv, s.dir.path() + "/" + name + ".log", std::move(env)));
      // The port file is written after the bind, so the port accepts
      // connections from here on: no health check meets a closed port (and
      // gRPC's reconnect backoff).
      const int port = s.processes.back()->port();
      const absl::Status serving = s.processes.back()->WaitUntilServing();
      EXPECT_TRUE(serving.ok()) << name << ": " << serving << "\n"
                                << conveyor::testing::ReadFile(s.dir.path() + "/" + name + ".log");
      return LoopbackAddress(port);
    };
    const std::string download = start("conveyor-download", {"--allow-private-networks"});
    const std::string resize = start("conveyor-resize", {});
    const std::string filter = start("conveyor-filter", {});
    const std::string upload = start("conveyor-upload", {"--file-root", s.out_dir});
    const std::string webhook =
        start("conveyor-webhook", {"--allow-private-networks"},
              {"CONVEYOR_WEBHOOK_SECRETS_FILE=" + s.webhook_secrets.path()});
    s.orchestrator_flags = {"--redis-url",     s.redis.url(), "--download-target", download,
                            "--resize-target", resize,        "--filter-target",   filter,
                            "--upload-target", upload,        "--webhook-target",  webhook};
    s.orchestrator = start("conveyor-orchestrator", s.orchestrator_flags);
  }

  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }

  // `conveyor --server <stack> args...`.
  static CommandResult Cli(std::vector<std::string> args, const std::string& stdin_path = "") {
    std::vector<std::string> argv = {kBin + "/conveyor", "--server", stack_->orchestrator};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, absl::Seconds(60), {}, stdin_path);
  }

  static std::string Url(const std::string& path) { return stack_->http.Url(path); }
  static std::string OutUri() { return "file://" + stack_->out_dir; }

  static v1::Chain GetChain(const std::string& name) {
    // Chain errors carry google.rpc details as Any; the JSON parser resolves
    // their types from the linked-in descriptors, so make sure they are.
    google::rpc::ErrorInfo::descriptor();
    google::rpc::BadRequest::descriptor();
    CommandResult r = Cli({"get", "--json", name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    v1::Chain chain;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &chain).ok()) << r.out;
    return chain;
  }

  // The first line of a submit's stdout: the chain name.
  static std::string FirstLine(const std::string& text) {
    return std::string(text.substr(0, text.find('\n')));
  }
};

std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout:\n", r.out, "\nstderr:\n", r.err);
}

TEST_F(CliTest, SubmitWithFlagsAndWaitSucceeds) {
  const int hooks_before = stack_->webhooks;
  CommandResult r = Cli({"submit", "--url", Url("/img.jpg"), "--resize", "160x", "--filter",
                         "grayscale", "--filter", "blur:sigma=1", "--upload", OutUri(), "--webhook",
                         Url("/hook"), "--label", "test=flags", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const std::string name = FirstLine(r.out);
  EXPECT_THAT(name, MatchesRegex("chains/[0-9a-f]{32}"));
  // Piped, so plain event lines, then the summary with the stored object.
  EXPECT_THAT(r.out, HasSubstr("STEP_SUCCEEDED step=1 resize"));
  EXPECT_THAT(r.out, HasSubstr(name + " SUCCEEDED"));
  EXPECT_THAT(r.out, HasSubstr(OutUri()));
  EXPECT_GT(stack_->webhooks, hooks_before);

  v1::Chain chain = GetChain(name);
  EXPECT_EQ(chain.state(), v1::SUCCEEDED);
  ASSERT_EQ(chain.steps_size(), 5);
  EXPECT_EQ(chain.steps(1).output().image().width(), 160);
  EXPECT_EQ(chain.steps(1).output().image().height(), 120);
  EXPECT_EQ(chain.spec().steps(2).filter().ops_size(), 2);
  ASSERT_EQ(chain.results_size(), 1);
  const std::string path = chain.results(0).uri().substr(std::string("file://").size());
  EXPECT_TRUE(std::filesystem::exists(path)) << path;
}

TEST_F(CliTest, SubmitWithoutWaitThenGetWatchAndJsonParse) {
  CommandResult r = Cli({"submit", "--url", Url("/img.jpg"), "--resize", "x60"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const std::string name = FirstLine(r.out);
  EXPECT_EQ(r.out, name + "\n");

  CommandResult watch = Cli({"watch", "--json", name});
  ASSERT_EQ(watch.exit_code, 0) << Describe(watch);
  int events = 0;
  v1::ChainEvent last;
  for (absl::string_view line : absl::StrSplit(watch.out, '\n', absl::SkipEmpty())) {
    v1::ChainEvent event;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                    google::protobuf::StringPiece(line.data(), line.size()), &event)
                    .ok())
        << line;
    ++events;
    last = event;
  }
  EXPECT_GE(events, 3);
  EXPECT_EQ(last.chain_state(), v1::SUCCEEDED);

  CommandResult get = Cli({"get", name});
  ASSERT_EQ(get.exit_code, 0) << Describe(get);
  EXPECT_THAT(get.out, HasSubstr("SUCCEEDED (100%)"));
  EXPECT_THAT(get.out, HasSubstr("80x60 image/jpeg"));
  EXPECT_EQ(GetChain(name).steps(1).output().image().height(), 60);

  CommandResult human_watch = Cli({"watch", name});
  EXPECT_EQ(human_watch.exit_code, 0) << Describe(human_watch);
  EXPECT_THAT(human_watch.out, HasSubstr("CHAIN_SUCCEEDED"));
}

TEST_F(CliTest, SubmitWithSpecFile) {
  TempDir dir;
  const std::string spec_path = dir.path() + "/chain.json";
  WriteFile(spec_path, absl::StrCat(R"({"steps": [
      {"download": {"url": ")",
                                    Url("/img.jpg"), R"("}},
      {"resize": {"width": 50, "height": 50, "fit": "COVER"}},
      {"filter": {"ops": [{"sepia": {}}], "output": {"format": "IMAGE_FORMAT_PNG"}}},
      {"upload": {"destination": ")",
                                    OutUri(), R"(", "keyTemplate": "spec-{chain_id}.{ext}"}}],
    "labels": {"from": "spec"}})"));
  CommandResult r = Cli({"submit", "--spec", spec_path, "--label", "extra=1", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  v1::Chain chain = GetChain(FirstLine(r.out));
  EXPECT_EQ(chain.spec().labels().at("from"), "spec");
  EXPECT_EQ(chain.spec().labels().at("extra"), "1");
  EXPECT_EQ(chain.steps(1).output().image().width(), 50);
  EXPECT_EQ(chain.steps(2).output().image().media_type(), "image/png");
  ASSERT_EQ(chain.results_size(), 1);
  EXPECT_THAT(chain.results(0).uri(), HasSubstr("/spec-"));
}

TEST_F(CliTest, SubmitLocalFileIsStreamedInChunks) {
  TempDir dir;
  const std::string path = dir.path() + "/big.jpg";
  // Noise compresses badly: well over one 1 MiB chunk.
  const std::string jpeg = MakeJpeg(1200, 1000, true);
  ASSERT_GT(jpeg.size(), size_t{1} << 20);
  WriteFile(path, jpeg);
  CommandResult r =
      Cli({"submit", "--file", path, "--resize", "120x", "--upload", OutUri(), "--wait"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  v1::Chain chain = GetChain(FirstLine(r.out));
  EXPECT_EQ(chain.inline_source().width(), 1200);
  EXPECT_EQ(chain.inline_source().size_bytes(), static_cast<int64_t>(jpeg.size()));
  EXPECT_EQ(chain.steps(0).output().image().width(), 120);
  EXPECT_EQ(chain.steps(0).output().image().height(), 100);
}

TEST_F(CliTest, WaitExitsOneWhenTheChainFails) {
  CommandResult r = Cli(
      {"submit", "--url", Url("/missing.jpg"), "--resize", "10x", "--max-attempts", "1", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(FirstLine(r.out) + " FAILED"));
  EXPECT_THAT(r.out, HasSubstr("NOT_FOUND"));
  EXPECT_EQ(GetChain(FirstLine(r.out)).state(), v1::FAILED);
}

TEST_F(CliTest, RpcErrorsExitThreeWithCodeAndMessage) {
  CommandResult r = Cli({"get", "chains/0123456789abcdef0123456789abcdef"});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, StartsWith("error: NOT_FOUND: "));
  EXPECT_EQ(r.out, "");

  CommandResult dead = RunCommand({kBin + "/conveyor", "--server", LoopbackAddress(PickFreePort()),
                                   "--timeout", "2s", "status"});
  EXPECT_EQ(dead.exit_code, 3) << Describe(dead);
  EXPECT_THAT(dead.err, StartsWith("error: UNAVAILABLE: "));
}

TEST_F(CliTest, ServerRejectsIllTypedChainWithInvalidArgument) {
  TempDir dir;
  const std::string spec_path = dir.path() + "/bad.json";
  WriteFile(spec_path, R"({"steps": [{"resize": {"width": 10}}]})");
  CommandResult r = Cli({"submit", "--spec", spec_path});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, StartsWith("error: INVALID_ARGUMENT: "));
}

TEST_F(CliTest, IdempotencyKeyReturnsTheSameChain) {
  const std::string key = absl::StrCat("idem-", absl::ToUnixNanos(absl::Now()));
  CommandResult first =
      Cli({"submit", "--url", Url("/img.jpg"), "--resize", "12x", "--idempotency-key", key});
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  CommandResult again =
      Cli({"submit", "--url", Url("/img.jpg"), "--resize", "12x", "--idempotency-key", key});
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_EQ(again.out, first.out);
  CommandResult different =
      Cli({"submit", "--url", Url("/img.jpg"), "--resize", "13x", "--idempotency-key", key});
  EXPECT_EQ(different.exit_code, 3) << Describe(different);
  EXPECT_THAT(different.err, StartsWith("error: ALREADY_EXISTS: "));
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  CommandResult bad_flag = Cli({"submit", "--url", Url("/img.jpg"), "--resize", "80x60x1"});
  EXPECT_EQ(bad_flag.exit_code, 2) << Describe(bad_flag);
  EXPECT_THAT(bad_flag.err, StartsWith("error: --resize: "));
  CommandResult unknown = Cli({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2) << Describe(unknown);
  CommandResult missing_file = Cli({"submit", "--file", "/nonexistent/x.jpg", "--resize", "1x"});
  EXPECT_EQ(missing_file.exit_code, 2) << Describe(missing_file);
  EXPECT_THAT(missing_file.err, HasSubstr("--file: cannot read \"/nonexistent/x.jpg\""));
  // --spec - reads stdin; here /dev/null, which is no spec.
  CommandResult empty_spec = Cli({"submit", "--spec", "-"});
  EXPECT_EQ(empty_spec.exit_code, 2) << Describe(empty_spec);
  EXPECT_THAT(empty_spec.err, StartsWith("error: --spec: "));
  CommandResult help = Cli({"batch", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("Examples:"));
}

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
  CommandResult submitted = RunCommand(submit);
  ASSERT_EQ(submitted.exit_code, 0) << Describe(submitted);
  const std::string name = FirstLine(submitted.out);

  CommandResult watch;
  std::vector<std::string> watch_argv = cli;
  watch_argv.insert(watch_argv.end(), {"watch", name});
  std::thread watcher([&] { watch = RunCommand(watch_argv, absl::Seconds(90)); });
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
