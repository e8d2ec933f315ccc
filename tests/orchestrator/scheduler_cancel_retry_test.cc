// Scheduler: CancelChain and RetryChain (fixture: scheduler_fixture.h).
#include "orchestrator/scheduler.h"

#include <gtest/gtest.h>

#include "tests/orchestrator/scheduler_fixture.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;

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

}  // namespace
}  // namespace conveyor::orchestrator
