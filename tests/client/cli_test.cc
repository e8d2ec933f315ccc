// The real `conveyor` binary against a real stack (fixture: cli_fixture.h):
// submit in its forms, wait, exit codes, idempotency, usage errors. List,
// cancel, watch, retry, batch, status, purge, bench: cli_manage_test.cc.
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
using ::conveyor::testing::PickFreePort;
using ::conveyor::testing::RunCommand;
using ::conveyor::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

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
                                   "--timeout", "2s", "status"},
                                  absl::Seconds(60), NoTokenEnv());
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

}  // namespace
}  // namespace conveyor::client
