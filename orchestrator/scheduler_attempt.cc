#include "orchestrator/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/stage_registry.h"
#include "common/status_details.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;
using conveyor::v1::StepStatus;

namespace {

// The wait before deferral number `deferrals` (1, 2, ...) of a busy refusal:
// doubling from kDeferralBaseDelay up to kMaxDeferralDelay, times a jitter
// factor in [0.5, 1.5) from `u` in [0, 1).
absl::Duration DeferralDelay(int deferrals, double u) {
  return std::min(kDeferralBaseDelay * (1 << std::min(deferrals - 1, 5)), kMaxDeferralDelay) *
         (0.5 + u);
}

}  // namespace

Transition Scheduler::OnAttemptResult(const Chain& chain, int step, int attempt,
                                      const AttemptResult& result) const {
  Transition t;
  t.chain = chain;
  t.previous_state = chain.state();
  if (IsTerminal(chain.state()) || step < 0 || step >= chain.steps_size() ||
      chain.steps(step).state() != conveyor::v1::RUNNING ||
      chain.steps(step).attempts() != attempt) {
    t.changed = false;
    return t;
  }
  const absl::Time now = clock_.Now();
  Chain& c = t.chain;
  c.set_version(chain.version() + 1);
  *c.mutable_update_time() = ToProtoTime(now);
  StepStatus* s = c.mutable_steps(step);
  const std::string stage(StageName(s->kind()));

  if (!result.status.ok() && result.not_delivered && !result.permanent) {
    // Nothing ran: give the attempt back and wait for the stage, unless the
    // chain's deadline or the stage's max outage is over (then OnClaim, when
    // the dispatcher releases the entry, fails the step).
    s->set_attempts(s->attempts() - 1);
    MarkWaiting(c, step, result.status, t.effects);
    if (c.has_deadline() && now >= FromProtoTime(c.deadline())) {
      FailChain(c, step,
                ChainTimeoutError(c, absl::StrCat(" passed while waiting for ", stage, " (",
                                                  result.status.message(), ")")),
                t.effects);
    } else if (absl::Status over = OutageOver(*s, now); !over.ok()) {
      FailChain(c, step, over, t.effects);
    }
    return t;
  }
  s->set_worker(result.worker);
  // The call reached a worker: whatever outage there was is over.
  s->clear_waiting_since();
  s->clear_waiting_reason();

  if (result.status.ok()) {
    s->set_state(conveyor::v1::SUCCEEDED);
    *s->mutable_end_time() = ToProtoTime(now);
    s->clear_error();
    *s->mutable_output() = result.output;
    *s->mutable_duration() = ToProtoDuration(result.duration);
    if (result.output.has_stored_object()) *c.add_results() = result.output.stored_object();
    if (ProducesImage(chain.spec().steps(step))) t.effects.output_blob = step + 1;
    c.set_progress_percent(ProgressPercent(c));
    t.effects.counters.emplace_back(stage + ".succeeded", 1);
    ChainEvent done = NewEvent(c, ChainEvent::STEP_SUCCEEDED, step);
    *done.mutable_output() = result.output;
    done.set_worker(result.worker);
    if (step + 1 == c.steps_size()) {
      c.set_state(conveyor::v1::SUCCEEDED);
      *c.mutable_end_time() = ToProtoTime(now);
      done.set_chain_state(c.state());
      t.effects.events.push_back(std::move(done));
      t.effects.events.push_back(NewEvent(c, ChainEvent::CHAIN_SUCCEEDED, -1));
      t.effects.delete_blobs = true;
      t.effects.expire = true;
    } else {
      t.effects.events.push_back(std::move(done));
      t.effects.enqueue_step = step + 1;
      t.effects.counters.push_back(QueuedCounter(c.steps(step + 1).kind(), 1));
    }
    return t;
  }

  // The chain's own deadline passed: no retry can help.
  if (c.has_deadline() && now >= FromProtoTime(c.deadline())) {
    FailChain(c, step,
              ChainTimeoutError(c, absl::StrCat(" passed during attempt ", attempt, " (",
                                                result.status.message(), ")")),
              t.effects);
    return t;
  }
  const EffectiveRetryPolicy policy = ResolveRetryPolicy(chain.spec().steps(step).retry());
  // A busy worker refused the call before doing anything: back off and try
  // again without spending an attempt, up to kMaxDeferrals times (then such
  // refusals count like any other error, so a step cannot wait forever).
  if (result.status.code() == absl::StatusCode::kResourceExhausted && !result.permanent &&
      ErrorReason(result.status) == kReasonWorkerBusy && s->deferrals() < kMaxDeferrals) {
    s->set_deferrals(s->deferrals() + 1);
    s->set_attempts(s->attempts() - 1);
    const absl::Time due = now + DeferralDelay(s->deferrals(), random_.Uniform01());
    if (!c.has_deadline() || due < FromProtoTime(c.deadline())) {
      ScheduleRetry(c, step, result, due, t);
      return t;
    }
  }
  const bool retryable = !result.permanent && policy.IsRetryable(result.status.code());
  if (!retryable || attempt >= policy.max_attempts) {
    absl::Status error = result.status;
    if (retryable) {
      error = absl::Status(result.status.code(),
                           absl::StrCat(result.status.message(), " (attempt ", attempt, " of ",
                                        policy.max_attempts, ", no attempts left)"));
    }
    FailChain(c, step, error, t.effects);
    return t;
  }
  const absl::Time due = now + Backoff(policy, attempt, random_.Uniform01());
  if (c.has_deadline() && due >= FromProtoTime(c.deadline())) {
    FailChain(c, step,
              ChainTimeoutError(
                  c, absl::StrCat(" passes before attempt ", attempt + 1,
                                  " would start (last error: ", result.status.message(), ")")),
              t.effects);
    return t;
  }
  ScheduleRetry(c, step, result, due, t);
  return t;
}

void Scheduler::ScheduleRetry(Chain& c, int step, const AttemptResult& result, absl::Time due,
                              Transition& t) const {
  StepStatus* s = c.mutable_steps(step);
  const std::string stage(StageName(s->kind()));
  s->set_state(conveyor::v1::RETRYING);
  *s->mutable_error() = ToRpcStatus(result.status);
  *s->mutable_next_attempt_time() = ToProtoTime(due);
  c.set_state(conveyor::v1::RETRYING);
  t.effects.enqueue_step = step;
  t.effects.retry_at = due;
  t.effects.counters.emplace_back(stage + ".retried", 1);
  t.effects.counters.push_back(QueuedCounter(s->kind(), 1));
  ChainEvent e = NewEvent(c, ChainEvent::STEP_RETRYING, step);
  *e.mutable_error() = s->error();
  *e.mutable_next_attempt_time() = s->next_attempt_time();
  e.set_worker(result.worker);
  t.effects.events.push_back(std::move(e));
}

}  // namespace conveyor::orchestrator
