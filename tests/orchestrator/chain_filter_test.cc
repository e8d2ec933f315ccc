#include "orchestrator/chain_filter.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

#include "orchestrator/scheduler.h"
#include "common/status_details.h"
#include "tests/orchestrator/fakes.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::ChainSpec;

// download -> resize -> filter, labels team=web.
ChainSpec Spec() {
  ChainSpec spec;
  spec.add_steps()->mutable_download()->set_url("https://example.com/a.jpg");
  spec.add_steps()->mutable_resize()->set_width(100);
  spec.add_steps()->mutable_filter()->add_ops()->mutable_grayscale();
  for (auto& step : *spec.mutable_steps()) step.mutable_retry()->set_max_attempts(1);
  (*spec.mutable_labels())["team"] = "web";
  return spec;
}

class ChainFilterTest : public ::testing::Test {
 protected:
  Chain Submitted() { return scheduler_.Submit(Spec(), "abc", "", absl::nullopt).chain; }

  // Runs steps before `step` to success, then fails `step` with `error`
  // (one attempt each, so the chain FAILS).
  Chain FailedAt(int step, const absl::Status& error) {
    Chain c = Submitted();
    for (int i = 0; i <= step; ++i) {
      ClaimDecision d = scheduler_.OnClaim(c, i, true);
      EXPECT_EQ(d.action, ClaimDecision::Action::kStart);
      c = d.transition.chain;
      AttemptResult r;
      if (i == step) r.status = error;
      c = scheduler_.OnAttemptResult(c, i, 1, r).chain;
    }
    EXPECT_EQ(c.state(), conveyor::v1::FAILED);
    return c;
  }

  testing::FakeClock clock_;
  testing::FixedRandom random_;
  Scheduler scheduler_{clock_, random_};
};

TEST_F(ChainFilterTest, CurrentStageIsTheFirstUnfinishedStep) {
  EXPECT_EQ(CurrentStage(Submitted()), conveyor::v1::STAGE_KIND_DOWNLOAD);
  EXPECT_EQ(CurrentStage(FailedAt(1, absl::InternalError("boom"))),
            conveyor::v1::STAGE_KIND_RESIZE);
  EXPECT_EQ(CurrentStage(FailedAt(2, absl::InternalError("boom"))),
            conveyor::v1::STAGE_KIND_FILTER);
  Chain done = Submitted();
  for (auto& s : *done.mutable_steps()) s.set_state(conveyor::v1::SUCCEEDED);
  EXPECT_EQ(CurrentStage(done), conveyor::v1::STAGE_KIND_UNSPECIFIED);
}

TEST_F(ChainFilterTest, ErrorReasonIsTheStepsErrorInfoElseTheCodeName) {
  EXPECT_EQ(ChainErrorReason(Submitted()), "");
  EXPECT_EQ(ChainErrorReason(FailedAt(1, absl::UnavailableError("down"))), "UNAVAILABLE");
  // The scheduler keeps only code and message on the chain's error; the
  // ErrorInfo is on the step's.
  Chain blocked = FailedAt(
      0, WithErrorReason(absl::PermissionDeniedError("private"), "DESTINATION_BLOCKED"));
  EXPECT_EQ(blocked.error().details_size(), 0);
  EXPECT_EQ(ChainErrorReason(blocked), "DESTINATION_BLOCKED");
  // An ErrorInfo on the chain's own error wins.
  *blocked.mutable_error() =
      ToRpcStatus(WithErrorReason(absl::PermissionDeniedError("x"), "CHAIN_LEVEL"));
  EXPECT_EQ(ChainErrorReason(blocked), "CHAIN_LEVEL");
  // A cancelled chain's error is CANCELLED.
  absl::StatusOr<Transition> cancelled = scheduler_.Cancel(Submitted());
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(ChainErrorReason(cancelled->chain), "CANCELLED");
}

TEST_F(ChainFilterTest, EveryFieldMustMatch) {
  const Chain failed = FailedAt(1, absl::UnavailableError("down"));
  ListQuery q;
  EXPECT_TRUE(ChainMatches(q, failed));
  q.state = conveyor::v1::FAILED;
  q.stage = conveyor::v1::STAGE_KIND_RESIZE;
  q.error_reason = "unavailable";  // case-insensitive
  q.labels["team"] = "web";
  EXPECT_TRUE(ChainMatches(q, failed));

  ListQuery other_stage = q;
  other_stage.stage = conveyor::v1::STAGE_KIND_FILTER;
  EXPECT_FALSE(ChainMatches(other_stage, failed));
  ListQuery other_reason = q;
  other_reason.error_reason = "INTERNAL";
  EXPECT_FALSE(ChainMatches(other_reason, failed));
  ListQuery other_label = q;
  other_label.labels["team"] = "api";
  EXPECT_FALSE(ChainMatches(other_label, failed));
  ListQuery missing_label = q;
  missing_label.labels["run"] = "1";
  EXPECT_FALSE(ChainMatches(missing_label, failed));
  ListQuery other_state = q;
  other_state.state = conveyor::v1::CANCELLED;
  EXPECT_FALSE(ChainMatches(other_state, failed));
  // A running chain has no error: a reason filter never matches it.
  ListQuery any_reason;
  any_reason.error_reason = "UNAVAILABLE";
  EXPECT_FALSE(ChainMatches(any_reason, Submitted()));
}

TEST_F(ChainFilterTest, TimeRangesAreInclusiveAfterExclusiveBefore) {
  const absl::Time created = clock_.Now();
  clock_.Advance(absl::Seconds(30));
  const Chain failed = FailedAt(0, absl::InternalError("boom"));  // created and ended now
  const absl::Time t = FromProtoTime(failed.create_time());
  ListQuery q;
  q.created_after = t;
  EXPECT_TRUE(ChainMatches(q, failed));
  q.created_before = t;
  EXPECT_FALSE(ChainMatches(q, failed));
  q.created_before = t + absl::Milliseconds(1);
  EXPECT_TRUE(ChainMatches(q, failed));
  q.created_after = created - absl::Hours(1);
  q.created_before = created;
  EXPECT_FALSE(ChainMatches(q, failed));

  ListQuery ended;
  ended.ended_after = FromProtoTime(failed.end_time());
  EXPECT_TRUE(ChainMatches(ended, failed));
  ended.ended_before = FromProtoTime(failed.end_time());
  EXPECT_FALSE(ChainMatches(ended, failed));
  // A chain that has not ended never matches an end-time filter.
  ListQuery any_end;
  any_end.ended_before = absl::InfiniteFuture();
  EXPECT_FALSE(ChainMatches(any_end, Submitted()));
}

TEST_F(ChainFilterTest, ListRequestIsValidatedNamingTheField) {
  conveyor::v1::ListChainsRequest r;
  r.set_stage(static_cast<conveyor::v1::StageKind>(42));
  absl::StatusOr<ListQuery> q = ListQueryFromRequest(r);
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(q.status().message(), "stage: unknown stage kind 42");

  r.Clear();
  r.set_error_reason("no spaces allowed");
  q = ListQueryFromRequest(r);
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(q.status().message(), "error_reason: want up to 128 chars"))
      << q.status();

  r.Clear();
  r.mutable_end_time_after()->set_nanos(-1);
  q = ListQueryFromRequest(r);
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(q.status().message(), "end_time_after: want a time in 0001-01-01..9999-12-31"));

  r.Clear();
  r.set_page_size(1001);
  EXPECT_EQ(ListQueryFromRequest(r).status().code(), absl::StatusCode::kInvalidArgument);

  r.Clear();
  r.set_state(conveyor::v1::FAILED);
  r.set_stage(conveyor::v1::STAGE_KIND_RESIZE);
  r.set_error_reason("UNAVAILABLE");
  (*r.mutable_labels())["team"] = "web";
  q = ListQueryFromRequest(r);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->page_size, 50);
  EXPECT_EQ(q->state, conveyor::v1::FAILED);
  EXPECT_EQ(q->stage, conveyor::v1::STAGE_KIND_RESIZE);
  EXPECT_EQ(q->error_reason, "UNAVAILABLE");
  EXPECT_EQ(q->labels.at("team"), "web");
  EXPECT_FALSE(q->ended_after.has_value());
}

TEST_F(ChainFilterTest, EmptyBulkFilterIsInvalidArgument) {
  conveyor::v1::ChainFilter f;
  absl::StatusOr<ListQuery> q = ListQueryFromFilter(f);
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(q.status().message(), "filter: empty")) << q.status();
  f.set_stage(conveyor::v1::STAGE_KIND_UPLOAD);
  q = ListQueryFromFilter(f);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->stage, conveyor::v1::STAGE_KIND_UPLOAD);
  f.set_state(static_cast<conveyor::v1::State>(99));
  EXPECT_EQ(ListQueryFromFilter(f).status().message(), "filter.state: unknown state 99");
}

}  // namespace
}  // namespace conveyor::orchestrator
