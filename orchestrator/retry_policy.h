// A step's retry policy as the scheduler applies it: the proto's fields with
// their documented defaults filled in, the backoff between attempts, and the
// attempt timeout. Pure functions of the spec (the jitter's random draw is
// the caller's), so they are tested without a clock.
#ifndef CONVEYOR_ORCHESTRATOR_RETRY_POLICY_H_
#define CONVEYOR_ORCHESTRATOR_RETRY_POLICY_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "conveyor/v1/chain.pb.h"

namespace conveyor::orchestrator {

// A step's retry policy with the proto defaults filled in.
struct EffectiveRetryPolicy {
  int max_attempts = 3;
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(30);
  double multiplier = 2.0;
  double jitter = 0.2;
  std::vector<absl::StatusCode> retryable_codes;

  bool IsRetryable(absl::StatusCode code) const;
};
EffectiveRetryPolicy ResolveRetryPolicy(const conveyor::v1::RetryPolicy& policy);

// Delay before attempt `failed_attempt + 1`:
//   min(max, initial * multiplier^(failed_attempt - 1)) * (1 + jitter * (2u - 1)).
// `u` in [0, 1).
absl::Duration Backoff(const EffectiveRetryPolicy& policy, int failed_attempt, double u);

// A step's attempt timeout (0 in the spec = 30 s).
absl::Duration StepTimeout(const conveyor::v1::Step& step);

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_RETRY_POLICY_H_
