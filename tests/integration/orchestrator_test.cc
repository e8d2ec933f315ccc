// conveyor-orchestrator end to end: real redis-server, real orchestrator
// processes, real workers (the five stage binaries, and
// conveyor-test-flaky-stage where a worker must fail or be slow on demand),
// all on 127.0.0.1.
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/redis/redis_keys.h"
#include "tests/testing/orchestrator_client.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/test_images.h"
#include "tests/testing/webhook_secrets_file.h"

// In conveyor::testing: the fixture's helpers (orchestrator_client.h,
// test_images.h) without a using-declaration each.
namespace conveyor::testing {
namespace {

using v1::Chain;
using v1::ChainEvent;

const std::string kBin = CONVEYOR_BIN_DIR;

// A step with fast retries, so tests stay within seconds.
v1::Step Fast(v1::Step step, int max_attempts = 4, absl::Duration timeout = absl::Seconds(10)) {
  step.mutable_retry()->set_max_attempts(max_attempts);
  step.mutable_retry()->mutable_initial_backoff()->set_nanos(50'000'000);
  step.mutable_retry()->mutable_max_backoff()->set_nanos(200'000'000);
  step.mutable_retry()->set_jitter(1e-9);
  step.mutable_timeout()->set_seconds(absl::ToInt64Seconds(timeout));
  step.mutable_timeout()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(timeout) % 1'000'000'000));
  return step;
}
v1::Step Resize(int width = 32) {
  v1::Step s;
  s.mutable_resize()->set_width(width);
  return Fast(s);
}
v1::Step Filter() {
  v1::Step s;
  s.mutable_filter()->add_ops()->mutable_grayscale();
  return Fast(s);
}

// A flaky worker's calls: (chain, step) -> outcomes, in call order.
using CallMap = std::map<std::pair<std::string, int>, std::vector<std::string>>;
CallMap Calls(const std::string& path) {
  CallMap out;
  for (const FlakyCall& call : ReadFlakyCalls(path)) {
    out[{call.chain, call.step}].push_back(call.outcome);
  }
  return out;
}
std::vector<std::string> Of(const CallMap& calls, const std::string& chain, int step) {
  auto it = calls.find({chain, step});
  return it == calls.end() ? std::vector<std::string>{} : it->second;
}

class OrchestratorTest : public ::testing::Test {
 protected:
  // On failure (or with CONVEYOR_TEST_DUMP_LOGS set), print every process log.
  void TearDown() override { DumpLogs(logs_, HasFailure()); }

  // A worker started on port 0; `process` is its process, for signals.
  struct Worker {
    std::unique_ptr<ServerProcess> server;
    ScopedProcess* process = nullptr;
    std::string address;
    std::string calls_file;
  };
  void Launch(Worker& w, std::vector<std::string> argv, const std::string& log) {
    w.server = std::make_unique<ServerProcess>(std::move(argv), log);
    w.process = &w.server->process();
    w.address = w.server->address();
    EXPECT_TRUE(w.server->WaitUntilServing(absl::Seconds(10)).ok()) << log;
  }

  // A flaky test worker (ResizeStage + FilterStage).
  Worker StartFlaky(std::vector<std::string> extra = {}) {
    Worker w;
    w.calls_file = absl::StrCat(dir_.path(), "/calls-", workers_started_++, ".txt");
    std::vector<std::string> argv = {kBin + "/conveyor-test-flaky-stage", "--calls-file",
                                     w.calls_file};
    argv.insert(argv.end(), extra.begin(), extra.end());
    logs_.push_back(w.calls_file + ".log");
    Launch(w, argv, logs_.back());
    return w;
  }

  Worker StartRealWorker(const std::string& binary, std::vector<std::string> extra = {}) {
    Worker w;
    std::vector<std::string> argv = {kBin + "/" + binary};
    argv.insert(argv.end(), extra.begin(), extra.end());
    logs_.push_back(absl::StrCat(dir_.path(), "/", binary, ".log"));
    Launch(w, argv, logs_.back());
    return w;
  }

  struct Orchestrator {
    std::unique_ptr<OrchestratorProcess> server;
    ScopedProcess* process = nullptr;
    std::string address;
    std::string log;
    v1::Orchestrator::Stub* stub = nullptr;
    int port() const { return server->port(); }
  };

  // Unset targets point at a port where nothing listens. `port` other than
  // 0 restarts an orchestrator where its clients expect it.
  Orchestrator StartOrchestrator(const std::map<std::string, std::string>& targets,
                                 std::vector<std::string> extra = {}, int port = 0) {
    Orchestrator o;
    o.log = absl::StrCat(dir_.path(), "/orchestrator-", orchestrators_started_++, ".log");
    logs_.push_back(o.log);
    extra.insert(extra.begin(), {"--lease-timeout", "1s", "--log-level", "info"});
    o.server = std::make_unique<OrchestratorProcess>(redis_.url(), targets, extra, o.log, port);
    EXPECT_TRUE(o.server->ready().ok()) << o.server->ready();
    o.process = &o.server->process();
    o.address = o.server->address();
    o.stub = &o.server->stub();
    return o;
  }

  int64_t RedisInt(std::initializer_list<std::string> argv) {
    orchestrator::RedisConnection conn(*orchestrator::ParseRedisUrl(redis_.url()), absl::Seconds(1),
                                       absl::Seconds(2));
    absl::StatusOr<orchestrator::RedisValue> v = conn.Command(argv);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? v->integer : -1;
  }

  v1::SubmitChainRequest InlineRequest(std::vector<v1::Step> steps) {
    v1::SubmitChainRequest req;
    for (auto& s : steps) *req.mutable_spec()->add_steps() = s;
    req.mutable_source()->set_data(jpeg_);
    return req;
  }

  RedisServer redis_;
  TempDir dir_;
  std::string jpeg_ = NoiseJpeg(96, 64);
  std::vector<std::string> logs_;
  int workers_started_ = 0;
  int orchestrators_started_ = 0;
};

TEST_F(OrchestratorTest, FullFiveStepChainWithRealWorkers) {
  // Origin and webhook receiver on loopback.
  httplib::Server http;
  const std::string image = NoiseJpeg(400, 300);
  std::vector<std::string> hook_bodies;
  std::vector<std::string> hook_ids;
  std::mutex hook_mu;
  http.Get("/photo.jpg", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(image, "image/jpeg");
  });
  http.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(hook_mu);
    hook_bodies.push_back(req.body);
    hook_ids.push_back(req.get_header_value("webhook-id"));
    res.status = 204;
  });
  const int http_port = http.bind_to_any_port("127.0.0.1");
  std::thread server([&] { http.listen_after_bind(); });
  TempDir objects;
  Worker download = StartRealWorker("conveyor-download", {"--allow-private-networks"});
  Worker resize = StartRealWorker("conveyor-resize");
  Worker filter = StartRealWorker("conveyor-filter");
  Worker upload = StartRealWorker("conveyor-upload", {"--file-root", objects.path()});
  const conveyor::testing::WebhookSecretsFile secrets;
  Worker webhook = StartRealWorker(
      "conveyor-webhook", {"--allow-private-networks", "--secrets-file", secrets.path()});
  Orchestrator o = StartOrchestrator({{"download", download.address},
                                      {"resize", resize.address},
                                      {"filter", filter.address},
                                      {"upload", upload.address},
                                      {"webhook", webhook.address}});
  v1::SubmitChainRequest req;
  v1::Step dl;
  dl.mutable_download()->set_url(absl::StrCat("http://127.0.0.1:", http_port, "/photo.jpg"));
  *req.mutable_spec()->add_steps() = Fast(dl);
  *req.mutable_spec()->add_steps() = Resize(200);
  *req.mutable_spec()->add_steps() = Filter();
  v1::Step up;
  up.mutable_upload()->set_destination("file://" + objects.path());
  *req.mutable_spec()->add_steps() = Fast(up);
  v1::Step hook;
  hook.mutable_webhook()->set_url(absl::StrCat("http://127.0.0.1:", http_port, "/hook"));
  *req.mutable_spec()->add_steps() = Fast(hook);
  (*req.mutable_spec()->mutable_labels())["job"] = "e2e";
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*o.stub, req, &submitted).ok());
  EXPECT_EQ(submitted.state(), v1::PENDING);
  Chain done = WaitForTerminal(*o.stub, submitted.name(), absl::Seconds(30));
  http.stop();
  server.join();
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.ShortDebugString();
  EXPECT_EQ(done.progress_percent(), 100);
  EXPECT_EQ(done.steps(0).output().image().width(), 400);
  EXPECT_EQ(done.steps(1).output().image().width(), 200);
  EXPECT_EQ(done.steps(1).output().image().height(), 150);
  ASSERT_EQ(done.results_size(), 1);
  const std::string path = done.results(0).uri().substr(7);
  EXPECT_TRUE(std::filesystem::exists(path)) << done.results(0).uri();
  EXPECT_EQ(done.steps(4).output().delivery().http_status(), 204);
  for (const auto& s : done.steps()) {
    EXPECT_EQ(s.attempts(), 1);
    EXPECT_FALSE(s.worker().empty());
  }
  std::lock_guard<std::mutex> lock(hook_mu);
  ASSERT_EQ(hook_bodies.size(), 1u);
  EXPECT_NE(hook_bodies[0].find(done.results(0).uri()), std::string::npos);
  // Derived from chain and step: a re-run of the step repeats the same id.
  EXPECT_EQ(hook_ids[0], absl::StrCat("msg_", done.name().substr(7), "_4"));
  EXPECT_EQ(done.steps(4).output().delivery().delivery_id(), hook_ids[0]);
  // Succeeded: no image bytes left, metadata expires.
  const std::string id = done.name().substr(7);
  for (int blob = 0; blob <= 5; ++blob) {
    EXPECT_EQ(RedisInt({"EXISTS", orchestrator::ChainBlobKey(id, blob)}), 0);
  }
  EXPECT_GT(RedisInt({"TTL", orchestrator::ChainMetaKey(id)}), 0);
}

TEST_F(OrchestratorTest, InlineSourceChainRunsOnRealResizeAndUpload) {
  TempDir objects;
  Worker resize = StartRealWorker("conveyor-resize");
  Worker upload = StartRealWorker("conveyor-upload", {"--file-root", objects.path()});
  Orchestrator o = StartOrchestrator({{"resize", resize.address}, {"upload", upload.address}});
  v1::Step up;
  up.mutable_upload()->set_destination("file://" + objects.path());
  v1::SubmitChainRequest req = InlineRequest({Resize(48), Fast(up)});
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*o.stub, req, &submitted).ok());
  EXPECT_EQ(submitted.inline_source().width(), 96);
  EXPECT_EQ(submitted.inline_source().media_type(), "image/jpeg");
  Chain done = WaitForTerminal(*o.stub, submitted.name());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.ShortDebugString();
  EXPECT_EQ(done.steps(0).output().image().width(), 48);
  ASSERT_EQ(done.results_size(), 1);
  EXPECT_TRUE(std::filesystem::exists(done.results(0).uri().substr(7)));
  EXPECT_EQ(RedisInt({"EXISTS", orchestrator::ChainBlobKey(done.name().substr(7), 0)}), 0);
}

TEST_F(OrchestratorTest, StreamSubmitChainAcceptsASourceInChunks) {
  Worker flaky = StartFlaky();
  Orchestrator o =
      StartOrchestrator({{"resize", flaky.address}}, {"--max-intermediate-bytes", "200000"});
  const std::string big = NoiseJpeg(300, 200);
  auto stream = [&](const std::string& bytes, Chain* chain) {
    grpc::ClientContext ctx;
    auto writer = o.stub->StreamSubmitChain(&ctx, chain);
    v1::SubmitChainChunk first;
    *first.mutable_request()->mutable_spec()->add_steps() = Resize();
    writer->Write(first);
    for (size_t off = 0; off < bytes.size(); off += 4096) {
      v1::SubmitChainChunk chunk;
      chunk.set_source_data(bytes.substr(off, 4096));
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  };
  Chain chain;
  grpc::Status s = stream(big, &chain);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(chain.inline_source().size_bytes(), static_cast<int64_t>(big.size()));
  EXPECT_EQ(chain.inline_source().width(), 300);
  Chain done = WaitForTerminal(*o.stub, chain.name());
  EXPECT_EQ(done.state(), v1::SUCCEEDED);
  Chain rejected;
  EXPECT_EQ(stream(std::string(300000, 'x'), &rejected).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // GetChain: bad names and unknown chains.
  grpc::ClientContext bad_ctx;
  v1::GetChainRequest bad;
  bad.set_name("chains/../../etc");
  EXPECT_EQ(o.stub->GetChain(&bad_ctx, bad, &rejected).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext missing_ctx;
  v1::GetChainRequest missing;
  missing.set_name("0123456789abcdef0123456789abcdef");
  EXPECT_EQ(o.stub->GetChain(&missing_ctx, missing, &rejected).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(OrchestratorTest, TypeErrorAtSubmitIsInvalidArgumentAndStoresNothing) {
  Orchestrator o = StartOrchestrator({});
  const int64_t keys_before = RedisInt({"DBSIZE"});
  v1::SubmitChainRequest req;
  v1::Step up;
  up.mutable_upload()->set_destination("file:///tmp");
  *req.mutable_spec()->add_steps() = up;
  *req.mutable_spec()->add_steps() = Resize();
  req.mutable_source()->set_data(jpeg_);
  Chain chain;
  grpc::Status s = SubmitChain(*o.stub, req, &chain);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "spec.steps[1].resize: needs an image but step 0 (upload) produces a stored object");
  v1::SubmitChainRequest no_source;
  *no_source.mutable_spec()->add_steps() = Resize();
  EXPECT_EQ(SubmitChain(*o.stub, no_source, &chain).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::SubmitChainRequest not_image = InlineRequest({Resize()});
  not_image.mutable_source()->set_data("definitely not an image");
  s = SubmitChain(*o.stub, not_image, &chain);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("source.data", 0), 0u) << s.error_message();
  EXPECT_EQ(RedisInt({"DBSIZE"}), keys_before);
}

TEST_F(OrchestratorTest, WorkerFailingTwiceIsRetriedWithBackoffThenSucceeds) {
  Worker flaky = StartFlaky({"--fail-times", "2"});
  Orchestrator o = StartOrchestrator({{"resize", flaky.address}});
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*o.stub, InlineRequest({Resize()}), &submitted).ok());
  Chain done = WaitForTerminal(*o.stub, submitted.name());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.ShortDebugString();
  EXPECT_EQ(done.steps(0).attempts(), 3);
  auto calls = Calls(flaky.calls_file);
  EXPECT_EQ(Of(calls, done.name(), 0), (std::vector<std::string>{"fail", "fail", "ok"}));
  grpc::Status status;
  std::vector<ChainEvent> events = WatchEvents(*o.stub, done.name(), "", &status);
  EXPECT_TRUE(status.ok()) << status.error_message();
  int retrying = 0;
  for (const ChainEvent& e : events) {
    if (e.type() != ChainEvent::STEP_RETRYING) continue;
    ++retrying;
    EXPECT_EQ(e.error().code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_NE(e.error().message().find("scripted failure"), std::string::npos);
    // Backoff recorded: 50 ms then 100 ms after the failure.
    const int64_t delay_ms = (e.next_attempt_time().seconds() - e.time().seconds()) * 1000 +
                             (e.next_attempt_time().nanos() - e.time().nanos()) / 1000000;
    EXPECT_NEAR(delay_ms, retrying == 1 ? 50 : 100, 2);
    EXPECT_FALSE(e.worker().empty());
  }
  EXPECT_EQ(retrying, 2);
}

TEST_F(OrchestratorTest, NonRetryableErrorFailsAtOnceWithWorkersMessage) {
  Worker flaky = StartFlaky({"--fail-times", "100", "--fail-code", "INVALID_ARGUMENT"});
  Orchestrator o = StartOrchestrator({{"resize", flaky.address}});
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*o.stub, InlineRequest({Resize(), Resize()}), &submitted).ok());
  Chain done = WaitForTerminal(*o.stub, submitted.name());
  ASSERT_EQ(done.state(), v1::FAILED);
  EXPECT_EQ(done.steps(0).state(), v1::FAILED);
  EXPECT_EQ(done.steps(0).attempts(), 1);
  EXPECT_EQ(done.steps(0).error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(done.steps(0).error().message(), "flaky stage: scripted failure on call 1");
  EXPECT_EQ(done.error().message(),
            "step 0 (resize) failed: flaky stage: scripted failure on call 1");
  EXPECT_EQ(done.steps(1).state(), v1::PENDING);
  EXPECT_EQ(Of(Calls(flaky.calls_file), done.name(), 0).size(), 1u);
}

TEST_F(OrchestratorTest, StepTimeoutIsTheWorkersDeadline) {
  Worker slow = StartFlaky({"--delay", "5s"});
  Orchestrator o = StartOrchestrator({{"resize", slow.address}});
  v1::Step step = Fast(Resize(), /*max_attempts=*/2, absl::Milliseconds(300));
  const absl::Time start = absl::Now();
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*o.stub, InlineRequest({step}), &submitted).ok());
  Chain done = WaitForTerminal(*o.stub, submitted.name());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  ASSERT_EQ(done.state(), v1::FAILED);
  EXPECT_EQ(done.steps(0).attempts(), 2);
  EXPECT_EQ(done.steps(0).error().code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_F(OrchestratorTest, ChainTimeoutCancelsTheRunningStep) {
  Worker slow = StartFlaky({"--delay", "5s"});
  Orchestrator o = StartOrchestrator({{"resize", slow.address}});
  v1::SubmitChainRequest req = InlineRequest({Resize()});
  req.mutable_spec()->mutable_timeout()->set_nanos(500'000'000);
  const absl::Time start = absl::Now();
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*o.stub, req, &submitted).ok());
  EXPECT_TRUE(submitted.has_deadline());
  Chain done = WaitForTerminal(*o.stub, submitted.name());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  ASSERT_EQ(done.state(), v1::FAILED);
  EXPECT_EQ(done.error().code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_NE(done.error().message().find("chain timeout"), std::string::npos)
      << done.error().message();
}

TEST_F(OrchestratorTest, CancelWhileAStepRunsCancelsTheWorkerCall) {
  Worker slow = StartFlaky({"--delay", "10s"});
  Orchestrator o = StartOrchestrator({{"resize", slow.address}});
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*o.stub, InlineRequest({Resize(), Resize()}), &submitted).ok());
  WaitForChain(*o.stub, submitted.name(),
               [](const Chain& c) { return c.steps(0).state() == v1::RUNNING; });
  // RUNNING is recorded just before the call leaves; give it time to reach
  // the worker so the test sees the worker's side of the cancellation.
  absl::SleepFor(absl::Milliseconds(300));
  grpc::ClientContext ctx;
  v1::CancelChainRequest req;
  req.set_name(submitted.name());
  Chain cancelled;
  ASSERT_TRUE(o.stub->CancelChain(&ctx, req, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::CANCELLED);
  EXPECT_EQ(cancelled.steps(0).state(), v1::CANCELLED);
  // The worker saw its call cancelled, long before its 10 s delay.
  const absl::Time until = absl::Now() + absl::Seconds(3);
  std::vector<std::string> outcomes;
  while (absl::Now() < until) {
    outcomes = Of(Calls(slow.calls_file), submitted.name(), 0);
    if (!outcomes.empty()) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(outcomes, std::vector<std::string>{"cancelled"});
  Chain later = GetChain(*o.stub, submitted.name());
  EXPECT_EQ(later.state(), v1::CANCELLED);
  EXPECT_EQ(later.steps(1).attempts(), 0);
  // Cancelling again returns it unchanged.
  grpc::ClientContext again_ctx;
  Chain again;
  ASSERT_TRUE(o.stub->CancelChain(&again_ctx, req, &again).ok());
  EXPECT_EQ(again.version(), later.version());
}

TEST_F(OrchestratorTest, RetryOfFailedChainReusesSucceededSteps) {
  const std::string fail_flag = dir_.path() + "/fail-filter";
  std::ofstream(fail_flag) << "x";
  Worker resize = StartFlaky();
  Worker filter = StartFlaky({"--fail-while-exists", fail_flag, "--fail-code", "INVALID_ARGUMENT"});
  Orchestrator o = StartOrchestrator({{"resize", resize.address}, {"filter", filter.address}});
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*o.stub, InlineRequest({Resize(), Filter(), Resize()}), &submitted).ok());
  Chain failed = WaitForTerminal(*o.stub, submitted.name());
  ASSERT_EQ(failed.state(), v1::FAILED);
  EXPECT_EQ(failed.steps(0).state(), v1::SUCCEEDED);
  std::filesystem::remove(fail_flag);
  grpc::ClientContext ctx;
  v1::RetryChainRequest req;
  req.set_name(submitted.name());
  Chain resumed;
  ASSERT_TRUE(o.stub->RetryChain(&ctx, req, &resumed).ok());
  EXPECT_EQ(resumed.state(), v1::PENDING);
  Chain done = WaitForTerminal(*o.stub, submitted.name());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.ShortDebugString();
  EXPECT_EQ(done.retries(), 1);
  auto resize_calls = Calls(resize.calls_file);
  EXPECT_EQ(Of(resize_calls, done.name(), 0), std::vector<std::string>{"ok"});
  EXPECT_EQ(Of(resize_calls, done.name(), 2), std::vector<std::string>{"ok"});
  EXPECT_EQ(Of(Calls(filter.calls_file), done.name(), 1), (std::vector<std::string>{"fail", "ok"}));
  // A running or succeeded chain cannot be retried.
  grpc::ClientContext again;
  Chain unused;
  EXPECT_EQ(o.stub->RetryChain(&again, req, &unused).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(OrchestratorTest, IdempotentSubmit) {
  Worker flaky = StartFlaky();
  // Targets may use gRPC's resolver syntax.
  Orchestrator o = StartOrchestrator({{"resize", "dns:///" + flaky.address}});
  v1::SubmitChainRequest req = InlineRequest({Resize()});
  req.set_idempotency_key("order-42");
  Chain first, second, third;
  ASSERT_TRUE(SubmitChain(*o.stub, req, &first).ok());
  ASSERT_TRUE(SubmitChain(*o.stub, req, &second).ok());
  EXPECT_EQ(first.name(), second.name());
  req.mutable_spec()->mutable_steps(0)->mutable_resize()->set_width(33);
  EXPECT_EQ(SubmitChain(*o.stub, req, &third).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  WaitForTerminal(*o.stub, first.name());
  EXPECT_EQ(Calls(flaky.calls_file).size(), 1u);
}

TEST_F(OrchestratorTest, WatchChainStreamsHistoryThenLiveEvents) {
  Worker slow = StartFlaky({"--delay", "400ms"});
  Orchestrator o = StartOrchestrator({{"resize", slow.address}});
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*o.stub, InlineRequest({Resize(), Resize()}), &submitted).ok());
  WaitForChain(*o.stub, submitted.name(),
               [](const Chain& c) { return c.steps(0).state() == v1::RUNNING; });
  grpc::Status status;
  std::vector<ChainEvent> events = WatchEvents(*o.stub, submitted.name(), "", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<std::pair<ChainEvent::Type, int>> seen;
  for (const auto& e : events) seen.emplace_back(e.type(), e.step_index());
  EXPECT_EQ(seen,
            (std::vector<std::pair<ChainEvent::Type, int>>{{ChainEvent::CHAIN_SUBMITTED, -1},
                                                           {ChainEvent::STEP_STARTED, 0},
                                                           {ChainEvent::STEP_SUCCEEDED, 0},
                                                           {ChainEvent::STEP_STARTED, 1},
                                                           {ChainEvent::STEP_SUCCEEDED, 1},
                                                           {ChainEvent::CHAIN_SUCCEEDED, -1}}));
  EXPECT_EQ(events.back().chain_state(), v1::SUCCEEDED);
  EXPECT_EQ(events.back().progress_percent(), 100);
  // Resuming after an event id returns only what followed it.
  std::vector<ChainEvent> rest =
      WatchEvents(*o.stub, submitted.name(), events[2].event_id(), &status);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(rest.size(), 3u);
  EXPECT_EQ(rest[0].event_id(), events[3].event_id());
  // Watching a finished chain after its last event ends at once.
  const absl::Time start = absl::Now();
  EXPECT_TRUE(WatchEvents(*o.stub, submitted.name(), events.back().event_id(), &status).empty());
  EXPECT_TRUE(status.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  // Unknown chain.
  WatchEvents(*o.stub, "chains/0123456789abcdef0123456789abcdef", "", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(OrchestratorTest, WatchesBeyondTheCapAreResourceExhausted) {
  Worker slow = StartFlaky({"--delay", "10s"});
  Orchestrator o = StartOrchestrator({{"resize", slow.address}}, {"--max-watches", "1"});
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*o.stub, InlineRequest({Resize()}), &submitted).ok());
  grpc::ClientContext first_ctx;
  v1::WatchChainRequest req;
  req.set_name(submitted.name());
  auto first = o.stub->WatchChain(&first_ctx, req);
  ChainEvent e;
  ASSERT_TRUE(first->Read(&e));  // the first watch is open
  grpc::Status status;
  WatchEvents(*o.stub, submitted.name(), "", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  first_ctx.TryCancel();
  while (first->Read(&e)) {
  }
  EXPECT_EQ(first->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(OrchestratorTest, ListChainsFiltersAndPaginates) {
  Worker flaky = StartFlaky();
  Orchestrator o = StartOrchestrator({{"resize", flaky.address}});
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    v1::SubmitChainRequest req = InlineRequest({Resize()});
    (*req.mutable_spec()->mutable_labels())["batch"] = i % 2 == 0 ? "even" : "odd";
    Chain c;
    ASSERT_TRUE(SubmitChain(*o.stub, req, &c).ok());
    names.insert(names.begin(), c.name());  // newest first
    absl::SleepFor(absl::Milliseconds(3));  // distinct create times
  }
  for (const auto& n : names) WaitForTerminal(*o.stub, n);
  std::vector<std::string> listed;
  v1::ListChainsRequest req;
  req.set_page_size(2);
  for (int page = 0; page < 5; ++page) {
    grpc::ClientContext ctx;
    v1::ListChainsResponse resp;
    ASSERT_TRUE(o.stub->ListChains(&ctx, req, &resp).ok());
    for (const auto& c : resp.chains()) listed.push_back(c.name());
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(listed, names);
  v1::ListChainsRequest odd;
  (*odd.mutable_labels())["batch"] = "odd";
  odd.set_state(v1::SUCCEEDED);
  grpc::ClientContext ctx;
  v1::ListChainsResponse resp;
  ASSERT_TRUE(o.stub->ListChains(&ctx, odd, &resp).ok());
  ASSERT_EQ(resp.chains_size(), 2);
  EXPECT_EQ(resp.chains(0).name(), names[1]);  // i = 3
  EXPECT_EQ(resp.chains(1).name(), names[3]);  // i = 1
  v1::ListChainsRequest bad;
  bad.set_page_size(5000);
  grpc::ClientContext bad_ctx;
  EXPECT_EQ(o.stub->ListChains(&bad_ctx, bad, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Purge: dry run counts, running chains are never touched.
  v1::PurgeChainsRequest purge;
  purge.set_dry_run(true);
  grpc::ClientContext purge_ctx;
  v1::PurgeChainsResponse purged;
  ASSERT_TRUE(o.stub->PurgeChains(&purge_ctx, purge, &purged).ok());
  EXPECT_EQ(purged.purged_count(), 5);
  purge.set_dry_run(false);
  purge.set_state(v1::RUNNING);
  grpc::ClientContext running_ctx;
  EXPECT_EQ(o.stub->PurgeChains(&running_ctx, purge, &purged).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  purge.set_state(v1::SUCCEEDED);
  grpc::ClientContext real_ctx;
  ASSERT_TRUE(o.stub->PurgeChains(&real_ctx, purge, &purged).ok());
  EXPECT_EQ(purged.purged_count(), 5);
  grpc::ClientContext get_ctx;
  v1::GetChainRequest get;
  get.set_name(names[0]);
  Chain gone;
  EXPECT_EQ(o.stub->GetChain(&get_ctx, get, &gone).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(OrchestratorTest, KillDashNineMidChainThenRestartCompletesWithoutRerunningSucceededSteps) {
  Worker resize = StartFlaky();
  Worker filter = StartFlaky({"--delay", "1500ms"});
  std::map<std::string, std::string> targets = {{"resize", resize.address},
                                                {"filter", filter.address}};
  Orchestrator first = StartOrchestrator(targets);
  Chain submitted;
  ASSERT_TRUE(
      SubmitChain(*first.stub, InlineRequest({Resize(), Filter(), Resize()}), &submitted).ok());
  WaitForChain(*first.stub, submitted.name(),
               [](const Chain& c) { return c.steps(1).state() == v1::RUNNING; });
  first.process->Signal(SIGKILL);
  first.process->Wait(absl::Seconds(5));
  Orchestrator second = StartOrchestrator(targets, {}, first.port());
  Chain done = WaitForTerminal(*second.stub, submitted.name(), absl::Seconds(20));
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.ShortDebugString();
  auto resize_calls = Calls(resize.calls_file);
  // Step 0 had succeeded before the crash: never run again.
  EXPECT_EQ(Of(resize_calls, done.name(), 0), std::vector<std::string>{"ok"});
  EXPECT_EQ(Of(resize_calls, done.name(), 2), std::vector<std::string>{"ok"});
  // Step 1 was in flight: at-least-once, it ran again as a new attempt.
  EXPECT_GE(Of(Calls(filter.calls_file), done.name(), 1).size(), 1u);
  EXPECT_EQ(done.steps(0).attempts(), 1);
  EXPECT_EQ(done.steps(1).attempts(), 2);
}

TEST_F(OrchestratorTest, TwoReplicasShareTheWorkAndEveryChainCompletesOnce) {
  Worker flaky = StartFlaky({"--delay", "20ms"});
  std::map<std::string, std::string> targets = {{"resize", flaky.address}};
  Orchestrator a = StartOrchestrator(targets, {"--replica-name", "replica-a"});
  Orchestrator b = StartOrchestrator(targets, {"--replica-name", "replica-b"});
  std::vector<std::string> names;
  for (int i = 0; i < 30; ++i) {
    Chain c;
    ASSERT_TRUE(
        SubmitChain(i % 2 ? *a.stub : *b.stub, InlineRequest({Resize(), Resize()}), &c).ok());
    names.push_back(c.name());
  }
  for (const auto& n : names) {
    Chain done = WaitForTerminal(*a.stub, n);
    EXPECT_EQ(done.state(), v1::SUCCEEDED);
  }
  auto calls = Calls(flaky.calls_file);
  for (const auto& n : names) {
    EXPECT_EQ(Of(calls, n, 0).size(), 1u) << n;
    EXPECT_EQ(Of(calls, n, 1).size(), 1u) << n;
  }
  // Both replicas dispatched some of the steps.
  auto attempts_in = [](const std::string& log) {
    std::string text = ReadFile(log);
    int n = 0;
    for (size_t pos = text.find("step attempt"); pos != std::string::npos;
         pos = text.find("step attempt", pos + 1)) {
      ++n;
    }
    return n;
  };
  const int from_a = attempts_in(a.log), from_b = attempts_in(b.log);
  EXPECT_EQ(from_a + from_b, 60);
  EXPECT_GT(from_a, 0);
  EXPECT_GT(from_b, 0);
  // Status sees both replicas.
  grpc::ClientContext ctx;
  v1::SystemStatus status;
  ASSERT_TRUE(a.stub->GetSystemStatus(&ctx, v1::GetSystemStatusRequest(), &status).ok());
  EXPECT_TRUE(status.redis_reachable());
  EXPECT_EQ(status.replicas_size(), 2);
  ASSERT_EQ(status.stages_size(), 5);
  EXPECT_EQ(status.stages(1).kind(), v1::STAGE_KIND_RESIZE);
  EXPECT_EQ(status.stages(1).health(), v1::StageStatus::SERVING);
  EXPECT_EQ(status.stages(1).succeeded(), 60);
  EXPECT_EQ(status.stages(1).queued(), 0);
  EXPECT_EQ(status.stages(0).health(), v1::StageStatus::UNREACHABLE);
  EXPECT_EQ(status.chains_by_state().at("SUCCEEDED"), 30);
}

TEST_F(OrchestratorTest, SigtermLetsTheInFlightStepFinishAndExitsZero) {
  Worker slow = StartFlaky({"--delay", "300ms"});
  std::map<std::string, std::string> targets = {{"resize", slow.address}};
  // The dispatcher drains for half the grace: 2 s, far more than the step.
  Orchestrator first = StartOrchestrator(targets, {"--shutdown-grace", "4s"});
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*first.stub, InlineRequest({Resize(), Resize()}), &submitted).ok());
  WaitForChain(*first.stub, submitted.name(),
               [](const Chain& c) { return c.steps(0).state() == v1::RUNNING; });
  first.process->Signal(SIGTERM);
  EXPECT_EQ(first.process->Wait(absl::Seconds(10)), 0);
  Orchestrator second = StartOrchestrator(targets, {}, first.port());
  Chain done = WaitForTerminal(*second.stub, submitted.name());
  EXPECT_EQ(done.state(), v1::SUCCEEDED);
  // Step 0 finished during the drain and was recorded: it ran once.
  EXPECT_EQ(done.steps(0).attempts(), 1);
  EXPECT_EQ(Of(Calls(slow.calls_file), done.name(), 0), std::vector<std::string>{"ok"});
}

TEST_F(OrchestratorTest, SurvivingReplicaTakesOverEveryStepOfAKilledOne) {
  Worker slow = StartFlaky({"--delay", "300ms"});
  std::map<std::string, std::string> targets = {{"resize", slow.address}};
  Orchestrator a = StartOrchestrator(targets, {"--replica-name", "doomed"});
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) {
    Chain c;
    ASSERT_TRUE(SubmitChain(*a.stub, InlineRequest({Resize(), Resize()}), &c).ok());
    names.push_back(c.name());
  }
  // Kill it while it has steps in flight; only then start the survivor.
  WaitForChain(*a.stub, names.back(),
               [](const Chain& c) { return c.steps(0).state() == v1::RUNNING; });
  a.process->Signal(SIGKILL);
  a.process->Wait(absl::Seconds(5));
  Orchestrator b = StartOrchestrator(targets, {"--replica-name", "survivor"});
  const auto calls_for = [&](const std::string& n, int step) {
    return static_cast<int>(Of(Calls(slow.calls_file), n, step).size());
  };
  int rerun_steps = 0;
  for (const auto& n : names) {
    Chain done = WaitForTerminal(*b.stub, n, absl::Seconds(30));
    ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.ShortDebugString();
    for (int step = 0; step < 2; ++step) {
      // Every worker call was a counted attempt: nothing ran behind the
      // state machine's back, and a recorded success was never run again.
      EXPECT_EQ(calls_for(n, step), done.steps(step).attempts()) << n << " step " << step;
      rerun_steps += done.steps(step).attempts() > 1;
    }
  }
  EXPECT_GT(rerun_steps, 0);  // the killed replica's in-flight steps ran again
}

TEST_F(OrchestratorTest, HeartbeatsKeepStepsLongerThanTheLeaseFromBeingTakenOver) {
  // Steps take 2.5 x the 1 s lease; the other replica must not reclaim them.
  Worker slow = StartFlaky({"--delay", "2500ms"});
  std::map<std::string, std::string> targets = {{"resize", slow.address}};
  Orchestrator a = StartOrchestrator(targets, {"--replica-name", "hb-a"});
  Orchestrator b = StartOrchestrator(targets, {"--replica-name", "hb-b"});
  std::vector<std::string> names;
  for (int i = 0; i < 4; ++i) {
    Chain c;
    ASSERT_TRUE(SubmitChain(i % 2 ? *a.stub : *b.stub, InlineRequest({Resize()}), &c).ok());
    names.push_back(c.name());
  }
  for (const auto& n : names) {
    Chain done = WaitForTerminal(*a.stub, n);
    EXPECT_EQ(done.state(), v1::SUCCEEDED);
    EXPECT_EQ(done.steps(0).attempts(), 1);
    EXPECT_EQ(Of(Calls(slow.calls_file), n, 0), std::vector<std::string>{"ok"});
  }
}

TEST_F(OrchestratorTest, RedisUnavailableAtSubmitIsUnavailableAndHealthNotServing) {
  Orchestrator o = StartOrchestrator({});
  redis_.Kill();
  Chain chain;
  grpc::Status s = SubmitChain(*o.stub, InlineRequest({Resize()}), &chain);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(o.address, grpc::InsecureChannelCredentials()));
  const absl::Time until = absl::Now() + absl::Seconds(5);
  grpc::health::v1::HealthCheckResponse::ServingStatus serving =
      grpc::health::v1::HealthCheckResponse::SERVING;
  while (absl::Now() < until && serving == grpc::health::v1::HealthCheckResponse::SERVING) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckResponse resp;
    if (health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok()) {
      serving = resp.status();
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(serving, grpc::health::v1::HealthCheckResponse::NOT_SERVING);
}

}  // namespace
}  // namespace conveyor::testing
