#include "orchestrator/retry_policy.h"

#include <algorithm>
#include <cmath>

#include "orchestrator/clock.h"

namespace conveyor::orchestrator {

bool EffectiveRetryPolicy::IsRetryable(absl::StatusCode code) const {
  return std::find(retryable_codes.begin(), retryable_codes.end(), code) != retryable_codes.end();
}

EffectiveRetryPolicy ResolveRetryPolicy(const conveyor::v1::RetryPolicy& p) {
  EffectiveRetryPolicy r;
  if (p.max_attempts() > 0) r.max_attempts = p.max_attempts();
  if (p.has_initial_backoff() && FromProtoDuration(p.initial_backoff()) > absl::ZeroDuration()) {
    r.initial_backoff = FromProtoDuration(p.initial_backoff());
  }
  if (p.has_max_backoff() && FromProtoDuration(p.max_backoff()) > absl::ZeroDuration()) {
    r.max_backoff = FromProtoDuration(p.max_backoff());
  }
  if (p.backoff_multiplier() > 0) r.multiplier = p.backoff_multiplier();
  if (p.jitter() > 0) r.jitter = p.jitter();
  if (p.retryable_codes_size() == 0) {
    r.retryable_codes = {absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded,
                         absl::StatusCode::kResourceExhausted, absl::StatusCode::kAborted};
  } else {
    for (int code : p.retryable_codes()) {
      r.retryable_codes.push_back(static_cast<absl::StatusCode>(code));
    }
  }
  return r;
}

absl::Duration Backoff(const EffectiveRetryPolicy& policy, int failed_attempt, double u) {
  const double initial_s = absl::ToDoubleSeconds(policy.initial_backoff);
  const double max_s = absl::ToDoubleSeconds(policy.max_backoff);
  double base = initial_s * std::pow(policy.multiplier, std::max(0, failed_attempt - 1));
  base = std::min(base, max_s);
  double factor = 1.0 + policy.jitter * (2.0 * u - 1.0);
  return absl::Seconds(std::max(0.0, base * factor));
}

absl::Duration StepTimeout(const conveyor::v1::Step& step) {
  absl::Duration d = FromProtoDuration(step.timeout());
  return d > absl::ZeroDuration() ? d : absl::Seconds(30);
}

}  // namespace conveyor::orchestrator
