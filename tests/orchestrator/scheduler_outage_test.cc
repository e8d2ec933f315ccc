// Scheduler: calls never delivered, steps waiting out a stage outage, the
// per-stage max outage (fixture: scheduler_fixture.h).
#include "orchestrator/scheduler.h"

#include <gtest/gtest.h>

#include "common/status_details.h"
#include "tests/orchestrator/scheduler_fixture.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;
using conveyor::v1::ChainSpec;

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
