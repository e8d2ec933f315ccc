// The chain state machine: pure logic, no gRPC, no Redis.
//
// Given a Chain and an event (submit, claim of a queued step, the result of an
// attempt, cancel, retry), computes the next Chain and the side effects the
// store must apply atomically with it (a Transition, transition.h: queue a
// step now or at a due time, store an output blob, delete blobs, set or drop
// the retention TTL, events to append, counters). The definitions are split
// by job: scheduler.cc (submit, cancel, retry, failing a chain, outages),
// scheduler_claim.cc (OnClaim), scheduler_attempt.cc (OnAttemptResult),
// retry_policy.cc (policy defaults and backoff).
//
// Thread-safe (no mutable state beyond the injected clock and random source).
#ifndef CONVEYOR_ORCHESTRATOR_SCHEDULER_H_
#define CONVEYOR_ORCHESTRATOR_SCHEDULER_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "conveyor/v1/chain.pb.h"
#include "orchestrator/clock.h"
#include "orchestrator/retry_policy.h"
#include "orchestrator/stage_outcome.h"
#include "orchestrator/transition.h"

namespace conveyor::orchestrator {

// What the dispatcher does with a step it took from a ready stream.
struct ClaimDecision {
  enum class Action {
    // Stale or finished entry: acknowledge it, do nothing else.
    kSkip,
    // Apply `transition` (step RUNNING, attempt counted), then call the worker.
    kStart,
    // Apply `transition` (the step or chain ends here, e.g. its deadline
    // passed), acknowledge, do not call the worker.
    kFinish,
    // The stage is in an outage: apply `transition` if changed (the step
    // PENDING and waiting, no attempt counted), keep the entry, call nothing.
    kWait,
  };
  Action action = Action::kSkip;
  Transition transition;
  std::string reason;  // for kSkip, why (for logs)
};

// The outcome of one attempt, as the dispatcher saw it: the stage's reply
// (status, output, worker, not_delivered) and what the dispatcher adds.
struct AttemptResult : StageOutcome {
  absl::Duration duration;
  // Fail the step at once whatever the code (e.g. output over the size cap).
  bool permanent = false;
};

// Who takes a queued step and in what circumstances.
struct ClaimContext {
  // The replica taking it.
  std::string coordinator;
  // Taken over from another replica whose lease expired.
  bool reclaimed = false;
  // Not OK while the step's stage is in an outage as this replica sees it:
  // the step is then recorded waiting instead of started (Action::kWait).
  absl::Status stage_outage;
};

struct SchedulerOptions {
  // How long a step may wait for its stage to serve again (the stage's
  // outage) before it fails with UNAVAILABLE; by stage kind, else the default.
  absl::Duration max_outage = absl::Minutes(15);
  std::map<conveyor::v1::StageKind, absl::Duration> max_outage_by_stage;

  absl::Duration MaxOutage(conveyor::v1::StageKind kind) const;
};

// Parses --max-outage: comma-separated items, each a duration (the default
// for every stage) or "<stage>=<duration>" (e.g. "15m,download=1h").
// INVALID_ARGUMENT naming the bad item.
absl::Status ParseMaxOutage(absl::string_view value, SchedulerOptions& options);

// A worker that refuses a call as busy (WORKER_BUSY) gets the step again
// after a short, growing, jittered delay, without spending an attempt; at most
// this many times per step.
inline constexpr int kMaxDeferrals = 100;
inline constexpr absl::Duration kDeferralBaseDelay = absl::Milliseconds(20);
inline constexpr absl::Duration kMaxDeferralDelay = absl::Milliseconds(500);

class Scheduler {
 public:
  Scheduler(const Clock& clock, RandomSource& random, SchedulerOptions options = {})
      : clock_(clock), random_(random), options_(std::move(options)) {}

  const SchedulerOptions& options() const { return options_; }

  // A new chain, PENDING, step 0 queued. `spec` must have been validated.
  Transition Submit(const conveyor::v1::ChainSpec& spec, const std::string& id,
                    const std::string& idempotency_key,
                    const absl::optional<conveyor::v1::ImageInfo>& inline_source) const;

  // A ready-stream entry for `step` was read (fresh, or taken over from a
  // replica whose lease expired: then the step may still say RUNNING and runs
  // again as a new attempt). `token_matches`: the entry's queue token equals
  // the chain's (else it is a leftover of an earlier schedule). A step that
  // has waited for its stage longer than its max outage, or whose chain
  // deadline passed, fails here instead of starting. A RUNNING step taken
  // over from another replica gets a STEP_RECLAIMED event naming it.
  ClaimDecision OnClaim(const conveyor::v1::Chain& chain, int step, bool token_matches,
                        const ClaimContext& context = {}) const;

  // The attempt of `step` numbered `attempt` finished. If the chain no longer
  // runs that attempt (cancelled, reclaimed) the result is dropped:
  // changed = false. A result that was not delivered to a worker gives the
  // attempt back and leaves the step PENDING and waiting (as kWait); the
  // dispatcher keeps its queue entry until the stage serves again.
  Transition OnAttemptResult(const conveyor::v1::Chain& chain, int step, int attempt,
                             const AttemptResult& result) const;

  // FAILED_PRECONDITION if SUCCEEDED; unchanged (changed = false) if already
  // FAILED or CANCELLED.
  absl::StatusOr<Transition> Cancel(const conveyor::v1::Chain& chain) const;

  // Resumes a FAILED or CANCELLED chain from its first unfinished step;
  // FAILED_PRECONDITION otherwise.
  absl::StatusOr<Transition> Retry(const conveyor::v1::Chain& chain) const;

  // Deadline for a dispatch now: min(now + step timeout, chain deadline).
  absl::Time AttemptDeadline(const conveyor::v1::Chain& chain, int step) const;

 private:
  conveyor::v1::ChainEvent NewEvent(const conveyor::v1::Chain& chain,
                                    conveyor::v1::ChainEvent::Type type, int step) const;
  void FailChain(conveyor::v1::Chain& chain, int step, const absl::Status& error,
                 SideEffects& effects) const;
  // DEADLINE_EXCEEDED "chain timeout of <spec.timeout><what>".
  static absl::Status ChainTimeoutError(const conveyor::v1::Chain& chain, absl::string_view what);
  // Puts `step` in RETRYING until `due` (queued in the delayed set).
  void ScheduleRetry(conveyor::v1::Chain& chain, int step, const AttemptResult& result,
                     absl::Time due, Transition& t) const;
  // Marks `step` PENDING and waiting for its stage since now (unless it
  // already waits) and records why; a STEP_WAITING event when the wait begins.
  void MarkWaiting(conveyor::v1::Chain& chain, int step, const absl::Status& reason,
                   SideEffects& effects) const;
  // UNAVAILABLE once `step` has waited for its stage longer than the stage's
  // max outage; OK otherwise.
  absl::Status OutageOver(const conveyor::v1::StepStatus& step, absl::Time now) const;

  const Clock& clock_;
  RandomSource& random_;
  const SchedulerOptions options_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_SCHEDULER_H_
