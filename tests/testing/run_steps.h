// Drives a stored chain through its steps as the dispatcher would record
// them, without stages: each step claimed, then finished on its first
// attempt. For store tests and benchmarks that need chains in a given end
// state. Header-only.
#ifndef CONVEYOR_TESTS_TESTING_RUN_STEPS_H_
#define CONVEYOR_TESTS_TESTING_RUN_STEPS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "orchestrator/chain_store.h"
#include "orchestrator/scheduler.h"

namespace conveyor::orchestrator::testing {

// Runs steps 0.. of `chain` (already submitted to `store`): all of them to
// success when `fail_step` is -1, else up to `fail_step`, which fails for
// good with `error`. The chain as last written; a failed Apply's status.
inline absl::StatusOr<conveyor::v1::Chain> RunSteps(Scheduler& scheduler, ChainStore& store,
                                                    conveyor::v1::Chain c, int fail_step = -1,
                                                    absl::Status error = absl::OkStatus()) {
  const int last = fail_step >= 0 ? fail_step : c.spec().steps_size() - 1;
  for (int s = 0; s <= last; ++s) {
    ClaimDecision d = scheduler.OnClaim(c, s, true);
    if (absl::Status a = store.Apply(c.version(), d.transition, {}); !a.ok()) return a;
    c = d.transition.chain;
    AttemptResult r;
    if (s == fail_step) {
      r.status = error;
      r.permanent = true;
    }
    Transition done = scheduler.OnAttemptResult(c, s, 1, r);
    if (absl::Status a = store.Apply(c.version(), done, {}); !a.ok()) return a;
    c = done.chain;
  }
  return c;
}

}  // namespace conveyor::orchestrator::testing

#endif  // CONVEYOR_TESTS_TESTING_RUN_STEPS_H_
