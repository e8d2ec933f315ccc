// The dispatcher with a scripted StageClient (the test decides when and how
// each worker call finishes), each test on the in-memory store (hermetic)
// and on RedisChainStore with a real redis-server.
#include "orchestrator/dispatcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <memory>
#include <opencv2/imgcodecs.hpp>

#include "absl/synchronization/mutex.h"
#include "orchestrator/chain_api.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/callers.h"
#include "tests/testing/forwarding_chain_store.h"
#include "tests/testing/store_backend.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::Chain;

// Holds every call until the test finishes it.
class ScriptedStageClient : public StageClient {
 public:
  struct Call {
    StageCall call;
    absl::AnyInvocable<void(StageReply) &&> done;
  };
  class Handle : public StageCallHandle {
   public:
    Handle(ScriptedStageClient* client, int index) : client_(client), index_(index) {}
    void Cancel() override {
      if (client_->ignore_cancel_) return;  // a worker that never hears of it
      StageReply reply;
      reply.status = absl::CancelledError("cancelled");
      client_->Finish(index_, std::move(reply));
    }

   private:
    ScriptedStageClient* client_;
    int index_;
  };

  std::shared_ptr<StageCallHandle> Start(StageCall call,
                                         absl::AnyInvocable<void(StageReply) &&> done) override {
    absl::MutexLock lock(&mu_);
    calls_.push_back(Call{std::move(call), std::move(done)});
    ++running_;
    max_running_ = std::max(max_running_, running_);
    return std::make_shared<Handle>(this, static_cast<int>(calls_.size()) - 1);
  }
  std::string Target(conveyor::v1::StageKind) const override { return "scripted"; }
  std::atomic<bool> ignore_cancel_{false};
  StageHealth CheckHealth(conveyor::v1::StageKind kind, absl::Duration) override {
    return health_.Get(kind);
  }
  orchestrator::testing::ScriptedHealth health_;

  // Waits until at least `n` calls were started.
  bool WaitForCalls(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  // Waits until call `i` has finished (e.g. by Cancel()).
  bool WaitFinished(int i, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto finished = [this, i]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return static_cast<size_t>(i) < calls_.size() && !calls_[i].done;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&finished), timeout);
  }
  StageCall CallAt(int i) {
    absl::MutexLock lock(&mu_);
    return calls_[i].call;
  }
  size_t calls() {
    absl::MutexLock lock(&mu_);
    return calls_.size();
  }
  int max_running() {
    absl::MutexLock lock(&mu_);
    return max_running_;
  }
  void Finish(int i, StageReply reply) {
    absl::AnyInvocable<void(StageReply) &&> done;
    {
      absl::MutexLock lock(&mu_);
      if (!calls_[i].done) return;
      done = std::move(calls_[i].done);
      calls_[i].done = nullptr;
      --running_;
    }
    std::move(done)(std::move(reply));
  }
  // The call never reached a worker (no connection could be made).
  void FinishNotDelivered(int i) {
    StageReply reply;
    reply.status = absl::UnavailableError("failed to connect to all addresses");
    reply.not_delivered = true;
    Finish(i, std::move(reply));
  }
  void FinishOk(int i, std::string bytes = "out", int width = 7) {
    StageReply reply;
    reply.output.mutable_image()->set_width(width);
    reply.output.mutable_image()->set_media_type("image/jpeg");
    reply.output_bytes = std::move(bytes);
    reply.worker = "scripted:1";
    Finish(i, std::move(reply));
  }

 private:
  absl::Mutex mu_;
  std::deque<Call> calls_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int max_running_ ABSL_GUARDED_BY(mu_) = 0;
};

std::string Jpeg() {
  cv::Mat img(20, 30, CV_8UC3, cv::Scalar(1, 2, 3));
  std::vector<uchar> out;
  cv::imencode(".jpg", img, out);
  return std::string(out.begin(), out.end());
}

// The store under test, counting the Apply calls that failed (the store
// was away), so a test can wait for the dispatcher to have tried.
class FailedApplyCountingStore : public testing::ForwardingChainStore {
 public:
  using ForwardingChainStore::ForwardingChainStore;
  absl::Status Apply(int64_t expected, const Transition& t, const ApplyExtras& extras) override {
    absl::Status s = inner_.Apply(expected, t, extras);
    if (!s.ok()) {
      absl::MutexLock lock(&mu_);
      ++failed_;
    }
    return s;
  }
  // True once `n` Apply calls have failed, false after `timeout`.
  bool WaitForFailedApplies(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return failed_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

 private:
  absl::Mutex mu_;
  int failed_ ABSL_GUARDED_BY(mu_) = 0;
};

class DispatcherTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void Start(int max_in_flight = 64, int64_t max_bytes = 64 << 20) {
    DispatcherOptions options;
    options.replica_name = "test";
    options.max_in_flight = max_in_flight;
    options.max_intermediate_bytes = max_bytes;
    options.lease_timeout = absl::Seconds(2);
    ChainApiOptions api_options;
    api_options.max_intermediate_bytes = max_bytes;
    api_ = std::make_unique<ChainApi>(store(), scheduler_, stages_, clock_, api_options);
    cancels_ = backend_.NewCancelFeed();
    dispatcher_ =
        std::make_unique<Dispatcher>(store(), *cancels_, stages_, scheduler_, clock_, options);
    dispatcher_->Start();
  }
  void TearDown() override {
    if (dispatcher_) dispatcher_->Stop(absl::ZeroDuration());
  }
  ChainStore& store() { return store_; }
  Chain Submit(std::vector<conveyor::v1::Step> steps) {
    conveyor::v1::SubmitChainRequest req;
    for (auto& s : steps) *req.mutable_spec()->add_steps() = s;
    req.mutable_source()->set_data(source_);
    absl::StatusOr<Chain> c = api_->Submit(testing::TenantUser(), req);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : Chain();
  }
  // Waits until `done(chain)`, woken by the chain's events (no polling).
  template <typename Pred>
  Chain WaitFor(const std::string& name, Pred done, absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time until = absl::Now() + timeout;
    std::string after;
    Chain c;
    while (true) {
      c = *api_->Get(testing::TenantUser(), name);
      if (done(c) || absl::Now() >= until) break;
      absl::StatusOr<EventBatch> batch =
          store().Events(ChainIdFromName(name), after, 100, absl::Milliseconds(100));
      if (batch.ok() && !batch->events.empty()) after = batch->events.back().event_id();
    }
    EXPECT_TRUE(done(c)) << "timed out: " << c.ShortDebugString();
    return c;
  }
  Chain WaitTerminal(const std::string& name) {
    return WaitFor(name, [](const Chain& c) { return IsTerminal(c.state()); });
  }
  static conveyor::v1::Step Resize() {
    conveyor::v1::Step s;
    s.mutable_resize()->set_width(10);
    return s;
  }

  RealClock clock_;
  RealRandomSource random_;
  Scheduler scheduler_{clock_, random_};
  ScriptedStageClient stages_;
  testing::StoreBackend backend_{GetParam(), clock_};
  FailedApplyCountingStore store_{backend_.store()};
  std::unique_ptr<CancelFeed> cancels_;
  std::unique_ptr<ChainApi> api_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::string source_ = Jpeg();
};

INSTANTIATE_TEST_SUITE_P(Stores, DispatcherTest,
                         ::testing::Values(testing::Backend::kMemory, testing::Backend::kRedis),
                         testing::BackendName);

TEST_P(DispatcherTest, SendsInputBytesAndCheckpointedOutputsToTheWorkers) {
  Start();
  conveyor::v1::Step hook;
  hook.mutable_webhook()->set_url("https://example.com/h");
  Chain c = Submit({Resize(), hook, Resize()});
  ASSERT_TRUE(stages_.WaitForCalls(1));
  StageCall first = stages_.CallAt(0);
  EXPECT_EQ(first.kind, conveyor::v1::STAGE_KIND_RESIZE);
  EXPECT_EQ(first.input.data(), source_);
  EXPECT_EQ(first.input.media_type(), "image/jpeg");
  EXPECT_EQ(first.input.width(), 30);
  EXPECT_EQ(first.context.chain(), c.name());
  EXPECT_EQ(first.context.tenant(),
            c.tenant());  // the webhook signs with this tenant's secrets
  EXPECT_EQ(first.context.attempt(), 1);
  EXPECT_LT(first.deadline, absl::Now() + absl::Seconds(31));
  stages_.FinishOk(0, "resized-bytes");
  ASSERT_TRUE(stages_.WaitForCalls(2));
  StageCall webhook = stages_.CallAt(1);
  EXPECT_EQ(webhook.kind, conveyor::v1::STAGE_KIND_WEBHOOK);
  ASSERT_EQ(webhook.report.outputs_size(), 1);
  EXPECT_EQ(webhook.report.outputs(0).image().width(), 7);
  stages_.FinishOk(1, "");
  ASSERT_TRUE(stages_.WaitForCalls(3));
  // The step after the webhook gets the resize's checkpointed output.
  EXPECT_EQ(stages_.CallAt(2).input.data(), "resized-bytes");
  EXPECT_EQ(stages_.CallAt(2).input.width(), 7);
  stages_.FinishOk(2);
  EXPECT_EQ(WaitTerminal(c.name()).state(), conveyor::v1::SUCCEEDED);
}

TEST_P(DispatcherTest, PerStageInFlightCapHoldsBackTheRest) {
  Start(/*max_in_flight=*/2);
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) names.push_back(Submit({Resize()}).name());
  ASSERT_TRUE(stages_.WaitForCalls(2));
  // With both slots taken nothing else may start, whatever the wait.
  EXPECT_FALSE(stages_.WaitForCalls(3, absl::Milliseconds(300)));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(stages_.WaitForCalls(static_cast<size_t>(i + 1)));
    stages_.FinishOk(i);
  }
  for (const auto& n : names) EXPECT_EQ(WaitTerminal(n).state(), conveyor::v1::SUCCEEDED);
  EXPECT_EQ(stages_.max_running(), 2);
  EXPECT_EQ(stages_.calls(), 5u);
}

TEST_P(DispatcherTest, OutputOverTheIntermediateCapFailsTheStepForGood) {
  Start(64, /*max_bytes=*/2048);
  Chain c = Submit({Resize(), Resize()});
  ASSERT_TRUE(stages_.WaitForCalls(1));
  stages_.FinishOk(0, std::string(4096, 'x'));
  Chain done = WaitTerminal(c.name());
  EXPECT_EQ(done.state(), conveyor::v1::FAILED);
  EXPECT_EQ(done.steps(0).attempts(), 1);
  EXPECT_EQ(done.steps(0).error().code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(done.steps(0).error().message(),
            "step 0 (resize) produced 4096 bytes, over "
            "--max-intermediate-bytes 2048");
  EXPECT_EQ(stages_.calls(), 1u);
}

TEST_P(DispatcherTest, InlineSourceOverTheCapIsRejectedAtSubmit) {
  Start(64, /*max_bytes=*/100);
  conveyor::v1::SubmitChainRequest req;
  *req.mutable_spec()->add_steps() = Resize();
  req.mutable_source()->set_data(source_);
  absl::StatusOr<Chain> c = api_->Submit(testing::TenantUser(), req);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message().substr(0, 12), "source.data:");
}

TEST_P(DispatcherTest, CancelChainCancelsTheInFlightCall) {
  Start();
  Chain c = Submit({Resize()});
  ASSERT_TRUE(stages_.WaitForCalls(1));
  absl::StatusOr<Chain> cancelled = api_->Cancel(testing::TenantUser(), c.name());
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), conveyor::v1::CANCELLED);
  // The dispatcher hears of it over pub/sub and cancels its call.
  EXPECT_TRUE(stages_.WaitFinished(0));
  Chain after = WaitTerminal(c.name());
  EXPECT_EQ(after.state(), conveyor::v1::CANCELLED);
  EXPECT_EQ(api_->Get(testing::TenantUser(), "chains/not-hex").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      api_->Get(testing::TenantUser(), "chains/0123456789abcdef0123456789abcdef").status().code(),
      absl::StatusCode::kNotFound);
}

TEST_P(DispatcherTest, LateResultOfAnAttemptFromBeforeRetryChainIsDropped) {
  Start();
  stages_.ignore_cancel_ = true;
  Chain c = Submit({Resize()});
  ASSERT_TRUE(stages_.WaitForCalls(1));
  ASSERT_TRUE(api_->Cancel(testing::TenantUser(), c.name()).ok());
  absl::StatusOr<Chain> resumed = api_->Retry(testing::TenantUser(), c.name());
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_TRUE(stages_.WaitForCalls(2));  // the resumed run, attempt 1 again
  EXPECT_EQ(stages_.CallAt(1).context.attempt(), 1);
  stages_.FinishOk(0, "old", /*width=*/1);  // the cancelled call answers late
  stages_.FinishOk(1, "new", /*width=*/2);
  Chain done = WaitTerminal(c.name());
  ASSERT_EQ(done.state(), conveyor::v1::SUCCEEDED);
  EXPECT_EQ(done.steps(0).output().image().width(), 2);
  EXPECT_EQ(done.retries(), 1);
}

TEST_P(DispatcherTest, UndeliveredCallWaitsWithoutAnAttemptAndResumesWhenTheStageServes) {
  Start();
  stages_.health_.Set(conveyor::v1::STAGE_KIND_RESIZE,
                      {StageHealth::State::kUnreachable, "UNAVAILABLE: connection refused"});
  Chain first = Submit({Resize()});
  ASSERT_TRUE(stages_.WaitForCalls(1));
  stages_.FinishNotDelivered(0);
  auto wait_until_waiting = [&](const std::string& name) {
    Chain c = WaitFor(name, [](const Chain& c) { return c.steps(0).has_waiting_since(); });
    EXPECT_EQ(c.steps(0).state(), conveyor::v1::PENDING) << name;
    EXPECT_EQ(c.steps(0).attempts(), 0) << name;
    EXPECT_TRUE(c.steps(0).has_waiting_since()) << name;
  };
  wait_until_waiting(first.name());
  // The stage is in an outage now: later steps wait without a call.
  Chain second = Submit({Resize()});
  Chain third = Submit({Resize()});
  wait_until_waiting(second.name());
  wait_until_waiting(third.name());
  EXPECT_FALSE(stages_.WaitForCalls(2, absl::Milliseconds(500)));
  stages_.health_.Set(conveyor::v1::STAGE_KIND_RESIZE, {StageHealth::State::kServing, ""});
  ASSERT_TRUE(stages_.WaitForCalls(4));
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ(stages_.CallAt(i).context.attempt(), 1);
    stages_.FinishOk(i);
  }
  for (const std::string& name : {first.name(), second.name(), third.name()}) {
    Chain done = WaitTerminal(name);
    EXPECT_EQ(done.state(), conveyor::v1::SUCCEEDED);
    EXPECT_EQ(done.steps(0).attempts(), 1);
  }
}

TEST_P(DispatcherTest, WaitingStepsOfTwoPrioritiesAreAllHeldAndRun) {
  // Stream ids are unique per stream only: the in-memory store, like Redis
  // within one millisecond, gives the first entry of each priority the same
  // id. Each must still be held (and run) as an entry of its own.
  Start(/*max_in_flight=*/1);
  stages_.health_.Set(conveyor::v1::STAGE_KIND_RESIZE,
                      {StageHealth::State::kUnreachable, "UNAVAILABLE: connection refused"});
  Chain first = Submit({Resize()});
  ASSERT_TRUE(stages_.WaitForCalls(1));
  stages_.FinishNotDelivered(0);
  std::vector<std::string> names = {first.name()};
  for (conveyor::v1::Priority p : {conveyor::v1::PRIORITY_LOW, conveyor::v1::PRIORITY_HIGH}) {
    conveyor::v1::SubmitChainRequest req;
    *req.mutable_spec()->add_steps() = Resize();
    req.mutable_spec()->set_priority(p);
    req.mutable_source()->set_data(source_);
    absl::StatusOr<Chain> c = api_->Submit(testing::TenantUser(), req);
    ASSERT_TRUE(c.ok()) << c.status();
    names.push_back(c->name());
  }
  for (const std::string& name : names) {
    WaitFor(name, [](const Chain& c) { return c.steps(0).has_waiting_since(); });
  }
  stages_.health_.Set(conveyor::v1::STAGE_KIND_RESIZE, {StageHealth::State::kServing, ""});
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(stages_.WaitForCalls(static_cast<size_t>(i + 1)));
    stages_.FinishOk(i);
  }
  for (const std::string& name : names) {
    EXPECT_EQ(WaitTerminal(name).state(), conveyor::v1::SUCCEEDED) << name;
  }
}

TEST_P(DispatcherTest, ResultComputedWhileTheStoreWasAwayIsRecordedWhenItIsBack) {
  Start();
  Chain c = Submit({Resize(), Resize()});
  ASSERT_TRUE(stages_.WaitForCalls(1));
  backend_.GoDown();
  stages_.FinishOk(0, "kept-through-the-outage");
  // The completer has failed to record it at least twice.
  ASSERT_TRUE(store_.WaitForFailedApplies(2, absl::Seconds(5)));
  backend_.ComeBack();
  // Recorded as soon as Redis answers: the next step starts well within the
  // 2 s lease, and the first step never runs again.
  ASSERT_TRUE(stages_.WaitForCalls(2, absl::Seconds(1.5)));
  EXPECT_EQ(stages_.CallAt(1).context.step_index(), 1);
  EXPECT_EQ(stages_.CallAt(1).input.data(), "kept-through-the-outage");
  stages_.FinishOk(1);
  Chain done = WaitTerminal(c.name());
  EXPECT_EQ(done.state(), conveyor::v1::SUCCEEDED);
  EXPECT_EQ(done.steps(0).attempts(), 1);
  EXPECT_EQ(stages_.calls(), 2u);
}

TEST_P(DispatcherTest, CancelWhosePubSubMessageWasLostStillReachesTheCall) {
  Start();
  Chain c = Submit({Resize()});
  ASSERT_TRUE(stages_.WaitForCalls(1));
  // Record the cancel without publishing it, as when the message went out
  // while this replica's subscriber was reconnecting.
  absl::StatusOr<StoredChain> stored = store().Load(ChainIdFromName(c.name()));
  ASSERT_TRUE(stored.ok());
  absl::StatusOr<Transition> cancel = scheduler_.Cancel(stored->chain);
  ASSERT_TRUE(cancel.ok());
  cancel->effects.publish_cancel = false;
  ASSERT_TRUE(store().Apply(stored->chain.version(), *cancel, {}).ok());
  // The reconciliation (every second) compares in-flight calls with the
  // recorded state and cancels this one.
  EXPECT_TRUE(stages_.WaitFinished(0, absl::Seconds(3)));
  EXPECT_EQ(WaitTerminal(c.name()).state(), conveyor::v1::CANCELLED);
}

}  // namespace
}  // namespace conveyor::orchestrator
