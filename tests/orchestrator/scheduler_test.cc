#include "orchestrator/scheduler.h"

#include <gtest/gtest.h>

#include "common/status_details.h"
#include "tests/orchestrator/fakes.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;
using conveyor::v1::ChainSpec;
using testing::FakeClock;
using testing::FixedRandom;

ChainSpec FiveStepSpec() {
  ChainSpec spec;
  spec.add_steps()->mutable_download()->set_url("https://example.com/a.jpg");
  spec.add_steps()->mutable_resize()->set_width(100);
  spec.add_steps()->mutable_filter()->add_ops()->mutable_grayscale();
  spec.add_steps()->mutable_upload()->set_destination("file:///out");
  spec.add_steps()->mutable_webhook()->set_url("https://example.com/hook");
  for (auto& step : *spec.mutable_steps()) {
    step.mutable_retry()->set_max_attempts(3);
    step.mutable_retry()->mutable_initial_backoff()->set_seconds(1);
    step.mutable_retry()->mutable_max_backoff()->set_seconds(5);
    step.mutable_retry()->set_jitter(0.2);
  }
  return spec;
}

class SchedulerTest : public ::testing::Test {
 protected:
  // Submits and starts step 0.
  Chain Started(const ChainSpec& spec) {
    Chain c = scheduler_.Submit(spec, "abc", "", absl::nullopt).chain;
    ClaimDecision d = scheduler_.OnClaim(c, 0, true);
    EXPECT_EQ(d.action, ClaimDecision::Action::kStart);
    return d.transition.chain;
  }
  AttemptResult Ok(conveyor::v1::StepOutput output = {}) {
    AttemptResult r;
    r.output = output;
    r.worker = "ipv4:127.0.0.1:1";
    r.duration = absl::Milliseconds(5);
    return r;
  }
  AttemptResult Error(absl::Status status) {
    AttemptResult r;
    r.status = status;
    r.worker = "ipv4:127.0.0.1:1";
    return r;
  }
  // Runs step `i` (already RUNNING) to success and claims the next one.
  Chain SucceedAndStartNext(const Chain& c, int i) {
    Transition t = scheduler_.OnAttemptResult(c, i, c.steps(i).attempts(), Ok());
    EXPECT_EQ(t.effects.enqueue_step, i + 1);
    ClaimDecision d = scheduler_.OnClaim(t.chain, i + 1, true);
    EXPECT_EQ(d.action, ClaimDecision::Action::kStart);
    return d.transition.chain;
  }

  FakeClock clock_;
  FixedRandom random_;
  Scheduler scheduler_{clock_, random_};
};

TEST_F(SchedulerTest, SubmitQueuesFirstStepPending) {
  ChainSpec spec = FiveStepSpec();
  spec.mutable_timeout()->set_seconds(60);
  Transition t = scheduler_.Submit(spec, "abc", "key-1", absl::nullopt);
  EXPECT_EQ(t.chain.name(), "chains/abc");
  EXPECT_EQ(t.chain.state(), conveyor::v1::PENDING);
  EXPECT_EQ(t.chain.version(), 1);
  EXPECT_EQ(t.chain.steps_size(), 5);
  EXPECT_EQ(t.chain.steps(3).kind(), conveyor::v1::STAGE_KIND_UPLOAD);
  EXPECT_EQ(t.chain.steps(3).name(), "chains/abc/steps/3");
  EXPECT_EQ(t.chain.idempotency_key(), "key-1");
  EXPECT_EQ(FromProtoTime(t.chain.deadline()), clock_.Now() + absl::Seconds(60));
  EXPECT_EQ(t.effects.enqueue_step, 0);
  EXPECT_FALSE(t.effects.retry_at.has_value());
  ASSERT_EQ(t.effects.events.size(), 1u);
  EXPECT_EQ(t.effects.events[0].type(), ChainEvent::CHAIN_SUBMITTED);
  EXPECT_EQ(t.previous_state, conveyor::v1::STATE_UNSPECIFIED);
}

TEST_F(SchedulerTest, ClaimStartsAttemptAndCountsItBeforeDispatch) {
  Chain c = scheduler_.Submit(FiveStepSpec(), "abc", "", absl::nullopt).chain;
  ClaimDecision d = scheduler_.OnClaim(c, 0, true);
  ASSERT_EQ(d.action, ClaimDecision::Action::kStart);
  const Chain& n = d.transition.chain;
  EXPECT_EQ(n.version(), 2);
  EXPECT_EQ(n.state(), conveyor::v1::RUNNING);
  EXPECT_EQ(n.steps(0).state(), conveyor::v1::RUNNING);
  EXPECT_EQ(n.steps(0).attempts(), 1);
  EXPECT_TRUE(n.steps(0).has_start_time());
  ASSERT_EQ(d.transition.effects.events.size(), 1u);
  EXPECT_EQ(d.transition.effects.events[0].type(), ChainEvent::STEP_STARTED);
  EXPECT_EQ(d.transition.effects.events[0].attempt(), 1);
  EXPECT_EQ(d.transition.previous_state, conveyor::v1::PENDING);
}

TEST_F(SchedulerTest, ClaimSkipsStaleTokenTerminalChainAndWrongStep) {
  Chain c = scheduler_.Submit(FiveStepSpec(), "abc", "", absl::nullopt).chain;
  EXPECT_EQ(scheduler_.OnClaim(c, 0, false).action, ClaimDecision::Action::kSkip);
  EXPECT_EQ(scheduler_.OnClaim(c, 1, true).action, ClaimDecision::Action::kSkip);
  EXPECT_EQ(scheduler_.OnClaim(c, 7, true).action, ClaimDecision::Action::kSkip);
  Chain cancelled = scheduler_.Cancel(c)->chain;
  EXPECT_EQ(scheduler_.OnClaim(cancelled, 0, true).action, ClaimDecision::Action::kSkip);
}

TEST_F(SchedulerTest, ReclaimedRunningStepStartsANewAttempt) {
  Chain c = Started(FiveStepSpec());
  ClaimDecision d = scheduler_.OnClaim(c, 0, true);  // its replica died
  ASSERT_EQ(d.action, ClaimDecision::Action::kStart);
  EXPECT_EQ(d.transition.chain.steps(0).attempts(), 2);
}

TEST_F(SchedulerTest, ReclaimedStepWithNoAttemptsLeftFails) {
  ChainSpec spec = FiveStepSpec();
  spec.mutable_steps(0)->mutable_retry()->set_max_attempts(1);
  Chain c = Started(spec);
  ClaimDecision d = scheduler_.OnClaim(c, 0, true);
  ASSERT_EQ(d.action, ClaimDecision::Action::kFinish);
  EXPECT_EQ(d.transition.chain.state(), conveyor::v1::FAILED);
  EXPECT_EQ(d.transition.chain.error().code(), static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(d.transition.effects.expire);
}

TEST_F(SchedulerTest, ClaimAfterChainDeadlineFailsWithDeadlineExceeded) {
  ChainSpec spec = FiveStepSpec();
  spec.mutable_timeout()->set_seconds(10);
  Chain c = scheduler_.Submit(spec, "abc", "", absl::nullopt).chain;
  clock_.Advance(absl::Seconds(11));
  ClaimDecision d = scheduler_.OnClaim(c, 0, true);
  ASSERT_EQ(d.action, ClaimDecision::Action::kFinish);
  EXPECT_EQ(d.transition.chain.state(), conveyor::v1::FAILED);
  EXPECT_EQ(d.transition.chain.error().code(),
            static_cast<int>(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(SchedulerTest, SuccessCheckpointsOutputAndQueuesNextStep) {
  Chain c = Started(FiveStepSpec());
  conveyor::v1::StepOutput out;
  out.mutable_image()->set_width(640);
  Transition t = scheduler_.OnAttemptResult(c, 0, 1, Ok(out));
  ASSERT_TRUE(t.changed);
  EXPECT_EQ(t.chain.steps(0).state(), conveyor::v1::SUCCEEDED);
  EXPECT_EQ(t.chain.steps(0).output().image().width(), 640);
  EXPECT_EQ(t.chain.steps(0).worker(), "ipv4:127.0.0.1:1");
  EXPECT_EQ(t.chain.progress_percent(), 20);
  EXPECT_EQ(t.effects.output_blob, 1);  // the download's bytes feed step 1
  EXPECT_EQ(t.effects.enqueue_step, 1);
  EXPECT_FALSE(t.effects.expire);
  ASSERT_EQ(t.effects.events.size(), 1u);
  EXPECT_EQ(t.effects.events[0].type(), ChainEvent::STEP_SUCCEEDED);
  EXPECT_EQ(t.effects.events[0].output().image().width(), 640);
}

TEST_F(SchedulerTest, LastStepSuccessFinishesChainDeletesBlobsAndExpires) {
  Chain c = Started(FiveStepSpec());
  for (int i = 0; i < 3; ++i) c = SucceedAndStartNext(c, i);
  conveyor::v1::StepOutput stored;
  stored.mutable_stored_object()->set_uri("file:///out/abc-3.jpg");
  Transition upload = scheduler_.OnAttemptResult(c, 3, 1, Ok(stored));
  EXPECT_EQ(upload.effects.output_blob, -1);  // upload produces no bytes
  ASSERT_EQ(upload.chain.results_size(), 1);
  EXPECT_EQ(upload.chain.results(0).uri(), "file:///out/abc-3.jpg");
  c = scheduler_.OnClaim(upload.chain, 4, true).transition.chain;
  Transition t = scheduler_.OnAttemptResult(c, 4, 1, Ok());
  EXPECT_EQ(t.chain.state(), conveyor::v1::SUCCEEDED);
  EXPECT_EQ(t.chain.progress_percent(), 100);
  EXPECT_TRUE(t.chain.has_end_time());
  EXPECT_TRUE(t.effects.delete_blobs);
  EXPECT_TRUE(t.effects.expire);
  EXPECT_EQ(t.effects.enqueue_step, -1);
  ASSERT_EQ(t.effects.events.size(), 2u);
  EXPECT_EQ(t.effects.events[1].type(), ChainEvent::CHAIN_SUCCEEDED);
}

TEST_F(SchedulerTest, RetryableErrorSchedulesBackoff) {
  Chain c = Started(FiveStepSpec());
  Transition t = scheduler_.OnAttemptResult(c, 0, 1, Error(absl::UnavailableError("down")));
  EXPECT_EQ(t.chain.state(), conveyor::v1::RETRYING);
  EXPECT_EQ(t.chain.steps(0).state(), conveyor::v1::RETRYING);
  EXPECT_EQ(t.chain.steps(0).error().message(), "down");
  EXPECT_EQ(t.effects.enqueue_step, 0);
  ASSERT_TRUE(t.effects.retry_at.has_value());
  EXPECT_EQ(*t.effects.retry_at, clock_.Now() + absl::Seconds(1));
  EXPECT_EQ(FromProtoTime(t.chain.steps(0).next_attempt_time()), *t.effects.retry_at);
  ASSERT_EQ(t.effects.events.size(), 1u);
  EXPECT_EQ(t.effects.events[0].type(), ChainEvent::STEP_RETRYING);
  EXPECT_EQ(FromProtoTime(t.effects.events[0].next_attempt_time()), *t.effects.retry_at);
}

TEST_F(SchedulerTest, BackoffGrowsIsCappedAndJittered) {
  EffectiveRetryPolicy p;
  p.initial_backoff = absl::Seconds(1);
  p.max_backoff = absl::Seconds(5);
  p.multiplier = 2;
  p.jitter = 0.2;
  EXPECT_EQ(Backoff(p, 1, 0.5), absl::Seconds(1));
  EXPECT_EQ(Backoff(p, 2, 0.5), absl::Seconds(2));
  EXPECT_EQ(Backoff(p, 3, 0.5), absl::Seconds(4));
  EXPECT_EQ(Backoff(p, 4, 0.5), absl::Seconds(5));
  EXPECT_EQ(Backoff(p, 9, 0.5), absl::Seconds(5));
  EXPECT_EQ(Backoff(p, 1, 0.0), absl::Milliseconds(800));
  EXPECT_NEAR(absl::ToDoubleSeconds(Backoff(p, 1, 0.999999)), 1.2, 1e-5);
}

TEST_F(SchedulerTest, DefaultsFillAnEmptyPolicy) {
  EffectiveRetryPolicy p = ResolveRetryPolicy({});
  EXPECT_EQ(p.max_attempts, 3);
  EXPECT_EQ(p.initial_backoff, absl::Milliseconds(200));
  EXPECT_EQ(p.max_backoff, absl::Seconds(30));
  EXPECT_TRUE(p.IsRetryable(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(p.IsRetryable(absl::StatusCode::kAborted));
  EXPECT_FALSE(p.IsRetryable(absl::StatusCode::kInvalidArgument));
}

TEST_F(SchedulerTest, NonRetryableErrorFailsAtOnceWithWorkersMessage) {
  Chain c = Started(FiveStepSpec());
  Transition t =
      scheduler_.OnAttemptResult(c, 0, 1, Error(absl::NotFoundError("HTTP 404 from origin")));
  EXPECT_EQ(t.chain.state(), conveyor::v1::FAILED);
  EXPECT_EQ(t.chain.steps(0).state(), conveyor::v1::FAILED);
  EXPECT_EQ(t.chain.steps(0).error().code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_EQ(t.chain.steps(0).error().message(), "HTTP 404 from origin");
  EXPECT_EQ(t.chain.error().message(), "step 0 (download) failed: HTTP 404 from origin");
  EXPECT_TRUE(t.effects.expire);
  EXPECT_FALSE(t.effects.delete_blobs);  // kept for RetryChain
  ASSERT_EQ(t.effects.events.size(), 2u);
  EXPECT_EQ(t.effects.events[0].type(), ChainEvent::STEP_FAILED);
  EXPECT_EQ(t.effects.events[1].type(), ChainEvent::CHAIN_FAILED);
}

TEST_F(SchedulerTest, RetriesExhaustedFails) {
  Chain c = Started(FiveStepSpec());
  for (int attempt = 1; attempt < 3; ++attempt) {
    Transition t = scheduler_.OnAttemptResult(c, 0, attempt, Error(absl::UnavailableError("x")));
    ASSERT_EQ(t.chain.state(), conveyor::v1::RETRYING);
    c = scheduler_.OnClaim(t.chain, 0, true).transition.chain;
  }
  EXPECT_EQ(c.steps(0).attempts(), 3);
  Transition t = scheduler_.OnAttemptResult(c, 0, 3, Error(absl::UnavailableError("x")));
  EXPECT_EQ(t.chain.state(), conveyor::v1::FAILED);
  EXPECT_EQ(t.chain.steps(0).error().code(), static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_NE(t.chain.steps(0).error().message().find("no attempts left"), std::string::npos);
}

TEST_F(SchedulerTest, BusyWorkerDefersWithoutSpendingAnAttempt) {
  Chain c = Started(FiveStepSpec());
  const absl::Status busy =
      WithErrorReason(absl::ResourceExhaustedError("at its concurrency limit"), kReasonWorkerBusy);
  // Far more refusals than max_attempts (3): none of them spends an attempt.
  for (int i = 1; i <= 10; ++i) {
    Transition t = scheduler_.OnAttemptResult(c, 0, 1, Error(busy));
    ASSERT_EQ(t.chain.state(), conveyor::v1::RETRYING) << "refusal " << i;
    EXPECT_EQ(t.chain.steps(0).attempts(), 0);
    EXPECT_EQ(t.chain.steps(0).deferrals(), i);
    ASSERT_TRUE(t.effects.retry_at.has_value());
    EXPECT_LE(*t.effects.retry_at, clock_.Now() + kMaxDeferralDelay * 1.5);
    c = scheduler_.OnClaim(t.chain, 0, true).transition.chain;
    ASSERT_EQ(c.steps(0).attempts(), 1);
  }
  EXPECT_EQ(scheduler_.OnAttemptResult(c, 0, 1, Ok()).chain.steps(0).state(),
            conveyor::v1::SUCCEEDED);
}

TEST_F(SchedulerTest, BusyRefusalsCountAsAttemptsAfterTheDeferralCap) {
  Chain c = Started(FiveStepSpec());
  c.mutable_steps(0)->set_deferrals(kMaxDeferrals);
  const absl::Status busy =
      WithErrorReason(absl::ResourceExhaustedError("at its concurrency limit"), kReasonWorkerBusy);
  Transition t = scheduler_.OnAttemptResult(c, 0, 1, Error(busy));
  EXPECT_EQ(t.chain.state(), conveyor::v1::RETRYING);
  EXPECT_EQ(t.chain.steps(0).attempts(), 1);  // spent, like any retryable error
  // A RESOURCE_EXHAUSTED without the reason is an ordinary failed attempt.
  Chain fresh = Started(FiveStepSpec());
  Transition plain =
      scheduler_.OnAttemptResult(fresh, 0, 1, Error(absl::ResourceExhaustedError("quota")));
  EXPECT_EQ(plain.chain.steps(0).attempts(), 1);
  EXPECT_EQ(plain.chain.steps(0).deferrals(), 0);
}

TEST_F(SchedulerTest, PermanentResultFailsEvenWithRetryableCode) {
  Chain c = Started(FiveStepSpec());
  AttemptResult r = Error(absl::ResourceExhaustedError("output of 70 MiB exceeds 64 MiB"));
  r.permanent = true;
  Transition t = scheduler_.OnAttemptResult(c, 0, 1, r);
  EXPECT_EQ(t.chain.state(), conveyor::v1::FAILED);
  EXPECT_EQ(t.chain.error().code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
}

TEST_F(SchedulerTest, CustomRetryableCodesAreHonoured) {
  ChainSpec spec = FiveStepSpec();
  spec.mutable_steps(0)->mutable_retry()->add_retryable_codes(google::rpc::NOT_FOUND);
  Chain c = Started(spec);
  EXPECT_EQ(scheduler_.OnAttemptResult(c, 0, 1, Error(absl::NotFoundError("x"))).chain.state(),
            conveyor::v1::RETRYING);
  EXPECT_EQ(scheduler_.OnAttemptResult(c, 0, 1, Error(absl::UnavailableError("x"))).chain.state(),
            conveyor::v1::FAILED);
}

TEST_F(SchedulerTest, RetryDuePastChainDeadlineFailsChain) {
  ChainSpec spec = FiveStepSpec();
  spec.mutable_timeout()->set_seconds(3);
  spec.mutable_steps(0)->mutable_retry()->mutable_initial_backoff()->set_seconds(5);
  Chain c = Started(spec);
  Transition t = scheduler_.OnAttemptResult(c, 0, 1, Error(absl::UnavailableError("x")));
  EXPECT_EQ(t.chain.state(), conveyor::v1::FAILED);
  EXPECT_EQ(t.chain.error().code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_FALSE(t.effects.retry_at.has_value());
}

TEST_F(SchedulerTest, ResultAfterChainDeadlineFailsChain) {
  ChainSpec spec = FiveStepSpec();
  spec.mutable_timeout()->set_seconds(3);
  Chain c = Started(spec);
  clock_.Advance(absl::Seconds(3));
  Transition t =
      scheduler_.OnAttemptResult(c, 0, 1, Error(absl::DeadlineExceededError("deadline")));
  EXPECT_EQ(t.chain.state(), conveyor::v1::FAILED);
  EXPECT_EQ(t.chain.error().code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_NE(t.chain.error().message().find("chain timeout"), std::string::npos);
}

TEST_F(SchedulerTest, AttemptDeadlineIsMinOfStepTimeoutAndChainDeadline) {
  ChainSpec spec = FiveStepSpec();
  spec.mutable_steps(0)->mutable_timeout()->set_seconds(20);
  spec.mutable_timeout()->set_seconds(50);
  Chain c = Started(spec);
  EXPECT_EQ(scheduler_.AttemptDeadline(c, 0), clock_.Now() + absl::Seconds(20));
  clock_.Advance(absl::Seconds(40));
  EXPECT_EQ(scheduler_.AttemptDeadline(c, 0), FromProtoTime(c.deadline()));
  EXPECT_EQ(scheduler_.AttemptDeadline(c, 1), FromProtoTime(c.deadline()));
  ChainSpec no_timeout = FiveStepSpec();
  Chain d = Started(no_timeout);
  EXPECT_EQ(scheduler_.AttemptDeadline(d, 1), clock_.Now() + absl::Seconds(30));
}

TEST_F(SchedulerTest, StaleResultIsDropped) {
  Chain c = Started(FiveStepSpec());
  Chain reclaimed = scheduler_.OnClaim(c, 0, true).transition.chain;  // attempt 2
  EXPECT_FALSE(scheduler_.OnAttemptResult(reclaimed, 0, 1, Ok()).changed);
  Chain cancelled = scheduler_.Cancel(c)->chain;
  EXPECT_FALSE(scheduler_.OnAttemptResult(cancelled, 0, 1, Ok()).changed);
}

TEST_F(SchedulerTest, CancelRunningChainRecordsCancelledAndPublishes) {
  Chain c = Started(FiveStepSpec());
  absl::StatusOr<Transition> t = scheduler_.Cancel(c);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->chain.state(), conveyor::v1::CANCELLED);
  EXPECT_EQ(t->chain.steps(0).state(), conveyor::v1::CANCELLED);
  EXPECT_EQ(t->chain.error().code(), static_cast<int>(absl::StatusCode::kCancelled));
  EXPECT_TRUE(t->effects.publish_cancel);
  EXPECT_TRUE(t->effects.expire);
  ASSERT_EQ(t->effects.events.size(), 1u);
  EXPECT_EQ(t->effects.events[0].type(), ChainEvent::CHAIN_CANCELLED);
}

TEST_F(SchedulerTest, DueRetryStartsTheNextAttemptAndCancelStopsARetryingChain) {
  Chain c = Started(FiveStepSpec());
  Chain retrying =
      scheduler_.OnAttemptResult(c, 0, 1, Error(absl::UnavailableError("down"))).chain;
  ClaimDecision d = scheduler_.OnClaim(retrying, 0, true);
  ASSERT_EQ(d.action, ClaimDecision::Action::kStart);
  EXPECT_EQ(d.transition.chain.steps(0).attempts(), 2);
  EXPECT_EQ(d.transition.chain.state(), conveyor::v1::RUNNING);
  EXPECT_FALSE(d.transition.chain.steps(0).has_next_attempt_time());
  EXPECT_EQ(d.transition.previous_state, conveyor::v1::RETRYING);
  absl::StatusOr<Transition> cancelled = scheduler_.Cancel(retrying);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->chain.state(), conveyor::v1::CANCELLED);
  EXPECT_EQ(cancelled->chain.steps(0).state(), conveyor::v1::CANCELLED);
  EXPECT_FALSE(cancelled->chain.steps(0).has_next_attempt_time());
  // A pending chain can be cancelled before anything ran.
  Chain pending = scheduler_.Submit(FiveStepSpec(), "p", "", absl::nullopt).chain;
  EXPECT_EQ(scheduler_.Cancel(pending)->chain.state(), conveyor::v1::CANCELLED);
}

TEST_F(SchedulerTest, CancelSucceededIsFailedPreconditionAndFailedIsUnchanged) {
  Chain c = Started(FiveStepSpec());
  Chain failed =
      scheduler_.OnAttemptResult(c, 0, 1, Error(absl::InvalidArgumentError("bad"))).chain;
  absl::StatusOr<Transition> same = scheduler_.Cancel(failed);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->changed);
  EXPECT_EQ(same->chain.state(), conveyor::v1::FAILED);
  Chain done = failed;
  done.set_state(conveyor::v1::SUCCEEDED);
  EXPECT_EQ(scheduler_.Cancel(done).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SchedulerTest, RetryResumesFromFirstUnfinishedStepKeepingSucceededOnes) {
  Chain c = Started(FiveStepSpec());
  c = SucceedAndStartNext(c, 0);
  c = SucceedAndStartNext(c, 1);
  Chain failed =
      scheduler_.OnAttemptResult(c, 2, 1, Error(absl::InvalidArgumentError("bad op"))).chain;
  ASSERT_EQ(failed.state(), conveyor::v1::FAILED);
  absl::StatusOr<Transition> t = scheduler_.Retry(failed);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->chain.state(), conveyor::v1::PENDING);
  EXPECT_EQ(t->chain.retries(), 1);
  EXPECT_EQ(t->effects.enqueue_step, 2);
  EXPECT_TRUE(t->effects.persist);
  EXPECT_EQ(t->chain.steps(0).state(), conveyor::v1::SUCCEEDED);
  EXPECT_EQ(t->chain.steps(1).state(), conveyor::v1::SUCCEEDED);
  EXPECT_EQ(t->chain.steps(2).state(), conveyor::v1::PENDING);
  EXPECT_EQ(t->chain.steps(2).attempts(), 0);
  EXPECT_FALSE(t->chain.steps(2).has_error());
  EXPECT_FALSE(t->chain.has_error());
  ASSERT_EQ(t->effects.events.size(), 1u);
  EXPECT_EQ(t->effects.events[0].type(), ChainEvent::CHAIN_RESUMED);
  EXPECT_EQ(t->effects.events[0].step_index(), 2);
  // The succeeded steps are not claimable again.
  EXPECT_EQ(scheduler_.OnClaim(t->chain, 0, true).action, ClaimDecision::Action::kSkip);
  EXPECT_EQ(scheduler_.OnClaim(t->chain, 2, true).action, ClaimDecision::Action::kStart);
}

TEST_F(SchedulerTest, RetryOfRunningChainIsFailedPrecondition) {
  Chain c = Started(FiveStepSpec());
  EXPECT_EQ(scheduler_.Retry(c).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ChainHelpersTest, InputBlobIndexFollowsTheLastImageProducer) {
  ChainSpec spec = FiveStepSpec();
  EXPECT_EQ(InputBlobIndex(spec, 0), 0);
  EXPECT_EQ(InputBlobIndex(spec, 1), 1);
  EXPECT_EQ(InputBlobIndex(spec, 2), 2);
  EXPECT_EQ(InputBlobIndex(spec, 3), 3);
  EXPECT_EQ(InputBlobIndex(spec, 4), 3);  // webhook after upload: the filter's output
  ChainSpec inline_spec;
  inline_spec.add_steps()->mutable_webhook()->set_url("https://x");
  inline_spec.add_steps()->mutable_resize()->set_width(10);
  EXPECT_EQ(InputBlobIndex(inline_spec, 1), 0);
  EXPECT_EQ(ChainIdFromName("chains/abc"), "abc");
  EXPECT_EQ(ChainIdFromName("abc"), "abc");
}

AttemptResult NotDelivered(absl::Status status) {
  AttemptResult r;
  r.status = status;
  r.not_delivered = true;
  return r;
}

TEST_F(SchedulerTest, UndeliveredCallSpendsNoAttemptAndWaitsForTheStage) {
  Chain c = Started(FiveStepSpec());
  Transition t = scheduler_.OnAttemptResult(
      c, 0, 1, NotDelivered(absl::UnavailableError("failed to connect to all addresses")));
  ASSERT_TRUE(t.changed);
  const auto& s = t.chain.steps(0);
  EXPECT_EQ(s.state(), conveyor::v1::PENDING);
  EXPECT_EQ(s.attempts(), 0);
  EXPECT_EQ(FromProtoTime(s.waiting_since()), clock_.Now());
  EXPECT_EQ(s.waiting_reason(), "UNAVAILABLE: failed to connect to all addresses");
  EXPECT_EQ(t.chain.state(), conveyor::v1::RUNNING);
  EXPECT_EQ(t.effects.enqueue_step, -1);  // the dispatcher keeps the entry
  ASSERT_EQ(t.effects.events.size(), 1u);
  EXPECT_EQ(t.effects.events[0].type(), ChainEvent::STEP_WAITING);
  EXPECT_EQ(t.effects.events[0].error().code(), static_cast<int>(absl::StatusCode::kUnavailable));
}

TEST_F(SchedulerTest, WaitingStepStartsWithItsFullAttemptsAndKeepsWaitingSince) {
  Chain c = Started(FiveStepSpec());
  Chain waiting =
      scheduler_.OnAttemptResult(c, 0, 1, NotDelivered(absl::UnavailableError("down"))).chain;
  const absl::Time since = clock_.Now();
  clock_.Advance(absl::Seconds(12));
  ClaimDecision d = scheduler_.OnClaim(waiting, 0, true, {"replica-a", false, absl::OkStatus()});
  ASSERT_EQ(d.action, ClaimDecision::Action::kStart);
  EXPECT_EQ(d.transition.chain.steps(0).attempts(), 1);
  // The outage is only over once a call reaches a worker.
  EXPECT_EQ(FromProtoTime(d.transition.chain.steps(0).waiting_since()), since);
  Transition ok = scheduler_.OnAttemptResult(d.transition.chain, 0, 1, Ok());
  EXPECT_FALSE(ok.chain.steps(0).has_waiting_since());
  EXPECT_TRUE(ok.chain.steps(0).waiting_reason().empty());
}

TEST_F(SchedulerTest, ClaimDuringAnOutageRecordsWaitingOnceAndThenWritesNothing) {
  Chain c = scheduler_.Submit(FiveStepSpec(), "abc", "", absl::nullopt).chain;
  const ClaimContext outage{"replica-a", false, absl::UnavailableError("resize is down")};
  ClaimDecision d = scheduler_.OnClaim(c, 0, true, outage);
  ASSERT_EQ(d.action, ClaimDecision::Action::kWait);
  EXPECT_TRUE(d.transition.changed);
  EXPECT_EQ(d.transition.chain.steps(0).attempts(), 0);
  EXPECT_EQ(d.transition.chain.steps(0).state(), conveyor::v1::PENDING);
  ASSERT_EQ(d.transition.effects.events.size(), 1u);
  EXPECT_EQ(d.transition.effects.events[0].type(), ChainEvent::STEP_WAITING);
  ClaimDecision again = scheduler_.OnClaim(d.transition.chain, 0, true, outage);
  ASSERT_EQ(again.action, ClaimDecision::Action::kWait);
  EXPECT_FALSE(again.transition.changed);
}

TEST_F(SchedulerTest, WaitLongerThanTheStagesMaxOutageFailsUnavailable) {
  SchedulerOptions options;
  options.max_outage = absl::Minutes(15);
  options.max_outage_by_stage[conveyor::v1::STAGE_KIND_DOWNLOAD] = absl::Minutes(1);
  Scheduler scheduler(clock_, random_, options);
  Chain c = scheduler.Submit(FiveStepSpec(), "abc", "", absl::nullopt).chain;
  c = scheduler.OnClaim(c, 0, true).transition.chain;
  c = scheduler.OnAttemptResult(c, 0, 1, NotDelivered(absl::UnavailableError("down"))).chain;
  clock_.Advance(absl::Seconds(59));
  EXPECT_EQ(scheduler.OnClaim(c, 0, true).action, ClaimDecision::Action::kStart);
  clock_.Advance(absl::Seconds(1));
  ClaimDecision d = scheduler.OnClaim(c, 0, true);
  ASSERT_EQ(d.action, ClaimDecision::Action::kFinish);
  EXPECT_EQ(d.transition.chain.state(), conveyor::v1::FAILED);
  EXPECT_EQ(d.transition.chain.steps(0).error().code(),
            static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_NE(d.transition.chain.steps(0).error().message().find("max outage of 1m"),
            std::string::npos);
}

TEST_F(SchedulerTest, UndeliveredAfterTheMaxOutageFailsAtOnce) {
  Chain c = Started(FiveStepSpec());
  c = scheduler_.OnAttemptResult(c, 0, 1, NotDelivered(absl::UnavailableError("down"))).chain;
  clock_.Advance(absl::Minutes(14));
  c = scheduler_.OnClaim(c, 0, true).transition.chain;  // health said SERVING, but
  clock_.Advance(absl::Minutes(1));
  Transition t = scheduler_.OnAttemptResult(c, 0, 1, NotDelivered(absl::UnavailableError("down")));
  EXPECT_EQ(t.chain.state(), conveyor::v1::FAILED);
  EXPECT_EQ(t.chain.error().code(), static_cast<int>(absl::StatusCode::kUnavailable));
}

TEST_F(SchedulerTest, ChainDeadlineEndsTheWait) {
  ChainSpec spec = FiveStepSpec();
  spec.mutable_timeout()->set_seconds(30);
  Chain c = Started(spec);
  c = scheduler_.OnAttemptResult(c, 0, 1, NotDelivered(absl::UnavailableError("down"))).chain;
  clock_.Advance(absl::Seconds(30));
  ClaimDecision d = scheduler_.OnClaim(c, 0, true);
  ASSERT_EQ(d.action, ClaimDecision::Action::kFinish);
  EXPECT_EQ(d.transition.chain.error().code(),
            static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_NE(d.transition.chain.error().message().find("waiting for download"), std::string::npos);
}

TEST_F(SchedulerTest, ReclaimedRunningStepRecordsWhichCoordinatorLostIt) {
  Chain c = scheduler_.Submit(FiveStepSpec(), "abc", "", absl::nullopt).chain;
  c = scheduler_.OnClaim(c, 0, true, {"replica-a", false, absl::OkStatus()}).transition.chain;
  EXPECT_EQ(c.steps(0).coordinator(), "replica-a");
  ClaimDecision d = scheduler_.OnClaim(c, 0, true, {"replica-b", true, absl::OkStatus()});
  ASSERT_EQ(d.action, ClaimDecision::Action::kStart);
  ASSERT_EQ(d.transition.effects.events.size(), 2u);
  EXPECT_EQ(d.transition.effects.events[0].type(), ChainEvent::STEP_RECLAIMED);
  EXPECT_EQ(d.transition.effects.events[0].coordinator(), "replica-a");
  EXPECT_EQ(d.transition.effects.events[1].type(), ChainEvent::STEP_STARTED);
  EXPECT_EQ(d.transition.effects.events[1].coordinator(), "replica-b");
  EXPECT_EQ(d.transition.chain.steps(0).attempts(), 2);
  EXPECT_EQ(d.transition.chain.steps(0).coordinator(), "replica-b");
}

TEST_F(SchedulerTest, FreshClaimOfAPendingStepRecordsNoReclaim) {
  Chain c = scheduler_.Submit(FiveStepSpec(), "abc", "", absl::nullopt).chain;
  ClaimDecision d = scheduler_.OnClaim(c, 0, true, {"replica-b", true, absl::OkStatus()});
  ASSERT_EQ(d.transition.effects.events.size(), 1u);
  EXPECT_EQ(d.transition.effects.events[0].type(), ChainEvent::STEP_STARTED);
}

TEST(ParseMaxOutageTest, DefaultAndPerStageItems) {
  SchedulerOptions options;
  ASSERT_TRUE(ParseMaxOutage("10m, download=1h,webhook=30s", options).ok());
  EXPECT_EQ(options.MaxOutage(conveyor::v1::STAGE_KIND_RESIZE), absl::Minutes(10));
  EXPECT_EQ(options.MaxOutage(conveyor::v1::STAGE_KIND_DOWNLOAD), absl::Hours(1));
  EXPECT_EQ(options.MaxOutage(conveyor::v1::STAGE_KIND_WEBHOOK), absl::Seconds(30));
}

TEST(ParseMaxOutageTest, BadItemsAreInvalidArgumentNamingThem) {
  SchedulerOptions options;
  absl::Status bad_stage = ParseMaxOutage("frobnicate=1m", options);
  EXPECT_EQ(bad_stage.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_stage.message().find("frobnicate"), std::string::npos);
  EXPECT_EQ(ParseMaxOutage("resize=soon", options).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseMaxOutage("-5m", options).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace conveyor::orchestrator
