// conveyor-orchestrator end to end: real redis-server, real orchestrator
// processes, real workers (the five stage binaries, and
// conveyor-test-flaky-stage where a worker must fail or be slow on demand),
// all on 127.0.0.1. Running chains: the five real stages, inline and
// streamed sources, type errors, retries, timeouts, cancel, retry, idempotency.
// Watch and list: orchestrator_watch_list_test.cc; crashes, replicas and
// Redis outages: orchestrator_replicas_test.cc.
#include <httplib.h>

#include <filesystem>
#include <mutex>
#include <thread>

#include "orchestrator/redis/redis_keys.h"
#include "tests/integration/orchestrator_fixture.h"
#include "tests/testing/webhook_secrets_file.h"

namespace conveyor::testing {
namespace {

using v1::Chain;
using v1::ChainEvent;

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

}  // namespace
}  // namespace conveyor::testing
