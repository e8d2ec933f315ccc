// The fixture of the Scheduler unit tests (scheduler_*test.cc, one binary):
// a scheduler on a fake clock and fixed randomness, and a five-step spec.
#ifndef CONVEYOR_TESTS_ORCHESTRATOR_SCHEDULER_FIXTURE_H_
#define CONVEYOR_TESTS_ORCHESTRATOR_SCHEDULER_FIXTURE_H_

#include <gtest/gtest.h>

#include "orchestrator/scheduler.h"
#include "tests/orchestrator/fakes.h"

namespace conveyor::orchestrator {

inline conveyor::v1::ChainSpec FiveStepSpec() {
  conveyor::v1::ChainSpec spec;
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
  conveyor::v1::Chain Started(const conveyor::v1::ChainSpec& spec) {
    conveyor::v1::Chain c = scheduler_.Submit(spec, "abc", "", absl::nullopt).chain;
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
  conveyor::v1::Chain SucceedAndStartNext(const conveyor::v1::Chain& c, int i) {
    Transition t = scheduler_.OnAttemptResult(c, i, c.steps(i).attempts(), Ok());
    EXPECT_EQ(t.effects.enqueue_step, i + 1);
    ClaimDecision d = scheduler_.OnClaim(t.chain, i + 1, true);
    EXPECT_EQ(d.action, ClaimDecision::Action::kStart);
    return d.transition.chain;
  }

  testing::FakeClock clock_;
  testing::FixedRandom random_;
  Scheduler scheduler_{clock_, random_};
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_TESTS_ORCHESTRATOR_SCHEDULER_FIXTURE_H_
