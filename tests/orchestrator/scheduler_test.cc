// Scheduler: submit, claim, results, retry policy, deadlines (fixture:
// scheduler_fixture.h). Cancel and retry: scheduler_cancel_retry_test.cc;
// stage outages: scheduler_outage_test.cc.
#include "orchestrator/scheduler.h"

#include <gtest/gtest.h>

#include "common/status_details.h"
#include "tests/orchestrator/scheduler_fixture.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;
using conveyor::v1::ChainSpec;

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

}  // namespace
}  // namespace conveyor::orchestrator
