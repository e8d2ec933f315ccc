// The dispatcher's completer: records each call's outcome.
#include "orchestrator/dispatcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/stage_registry.h"
#include "common/status_details.h"
#include "orchestrator/dispatch_rules.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;
using conveyor::v1::StageKind;

void Dispatcher::CompleterLoop() {
  while (true) {
    Completion c;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        const absl::Time now = clock_.Now();
        // Once Stop() gives up on in-flight calls, results Redis would not
        // take get one last try; their entries stay pending otherwise, and
        // another replica re-runs them after the lease.
        auto ready = std::find_if(completions_.begin(), completions_.end(),
                                  [&](const Completion& x) {
                                    return x.due <= now || cancelling_all_;
                                  });
        if (ready != completions_.end()) {
          c = std::move(*ready);
          completions_.erase(ready);
          break;
        }
        if (stopping_ && in_flight_.empty() && completions_.empty()) return;
        completion_cv_.WaitWithTimeout(
            &mu_, completions_.empty() ? absl::Milliseconds(500) : dispatch::kRedisRetryDelay);
      }
    }
    if (!Complete(c)) {
      c.due = clock_.Now() + dispatch::kRedisRetryDelay;
      absl::MutexLock lock(&mu_);
      completions_.push_back(std::move(c));
    }
  }
}

bool Dispatcher::Complete(Completion& completion) {
  std::shared_ptr<InFlight> call = completion.call;
  StageReply& reply = completion.reply;
  const QueueEntry& entry = call->entry;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && reply.status.code() == absl::StatusCode::kCancelled) {
      // We cancelled it to shut down: leave the entry pending for another
      // replica instead of recording a failure.
      in_flight_.erase(entry.key());
      --in_flight_by_stage_[entry.kind];
      completion_cv_.SignalAll();
      return true;
    }
  }
  AttemptResult result;
  static_cast<StageOutcome&>(result) = reply;
  result.duration = clock_.Now() - call->started;
  if (result.status.ok() &&
      static_cast<int64_t>(reply.output_bytes.size()) > options_.max_intermediate_bytes) {
    result.status = absl::ResourceExhaustedError(absl::StrCat(
        "step ", call->step, " (", StageName(entry.kind), ") produced ",
        reply.output_bytes.size(), " bytes, over --max-intermediate-bytes ",
        options_.max_intermediate_bytes));
    result.permanent = true;
    result.output.Clear();
  }
  if (completion.due == absl::InfinitePast()) {
    // First time this outcome is seen (not a retry of its recording): adapt
    // the stage's window to what the worker said.
    absl::MutexLock lock(&mu_);
    StageFlow& flow = Flow(entry.kind);
    if (result.not_delivered) {
      // The stage is in an outage from now on, before the wait is recorded:
      // a step claimed once the wait shows must not call the stage.
      EnterOutage(flow, entry.kind, result.status);
    } else {
      if (ErrorReason(result.status) == kReasonWorkerBusy) {
        flow.window = std::max(1, flow.window / 2);
      } else {
        flow.window = std::min(options_.max_in_flight, flow.window + 1);
      }
    }
  }
  Chain chain = call->chain;
  bool recorded = false;
  bool waits = false;
  for (int round = 0; round < dispatch::kMaxCasRounds; ++round) {
    Transition t = scheduler_.OnAttemptResult(chain, call->step, call->attempt, result);
    if (!t.changed) {
      // The chain moved on (cancelled, or another replica took the step
      // over). Acknowledge only if nobody runs this step any more.
      const bool still_running = !IsTerminal(chain.state()) && call->step < chain.steps_size() &&
                                 chain.steps(call->step).state() == conveyor::v1::RUNNING;
      if (!still_running) store_.Ack(entry, {}).IgnoreError();
      recorded = true;
      break;
    }
    waits = result.not_delivered && !IsTerminal(t.chain.state());
    ApplyExtras extras;
    if (waits) {
      // The entry stays ours, waiting; its step counts as queued again.
      extras.counters.push_back(QueuedCounter(entry.kind, 1));
    } else {
      extras.ack = &entry;
    }
    if (result.status.ok()) extras.output_blob = &reply.output_bytes;
    absl::Status applied = store_.Apply(chain.version(), t, extras);
    if (applied.ok()) {
      recorded = true;
      if (t.effects.retry_at.has_value()) NotifyRetryScheduled(*t.effects.retry_at);
      if (waits) {
        QueueEntry parked = entry;
        parked.counted = false;
        absl::MutexLock lock(&mu_);
        Park(std::move(parked), t.chain, result.status);
      }
      break;
    }
    if (!IsStaleVersion(applied)) {
      if (applied.code() == absl::StatusCode::kUnavailable) {
        // Redis is away: keep the result (and the entry's lease) and record
        // it when Redis is back, rather than re-running the step a lease
        // later.
        if (completion.due == absl::InfinitePast()) {
          LogLine(LogLevel::kWarning).Add("msg", "cannot record step result yet; will retry")
              .Add("chain", entry.chain_id).Add("step", call->step)
              .Add("error", applied.ToString());
        }
        absl::MutexLock lock(&mu_);
        if (!cancelling_all_) return false;
      }
      LogLine(LogLevel::kWarning).Add("msg", "cannot record step result; it will be reclaimed")
          .Add("chain", entry.chain_id).Add("step", call->step)
          .Add("error", applied.ToString());
      break;
    }
    absl::StatusOr<StoredChain> fresh = store_.Load(entry.chain_id);
    if (!fresh.ok()) {
      if (fresh.status().code() == absl::StatusCode::kUnavailable) {
        absl::MutexLock lock(&mu_);
        if (!cancelling_all_) return false;
      }
      break;
    }
    if (fresh->queue_token != entry.token) {
      // The step was queued again since (RetryChain after a cancel): this
      // attempt belongs to an old schedule. Drop it, release our entry.
      store_.Ack(entry, {}).IgnoreError();
      recorded = true;
      break;
    }
    chain = std::move(fresh->chain);
  }
  LogLine(LogLevel::kInfo).Add("msg", "step attempt").Add("chain", entry.chain_id)
      .Add("step", call->step).Add("stage", StageName(entry.kind)).Add("attempt", call->attempt)
      .Add("code", absl::StatusCodeToString(result.status.code()))
      .Add("ms", absl::ToInt64Milliseconds(result.duration)).Add("worker", result.worker)
      .Add("recorded", recorded ? "true" : "false").Add("waiting", waits ? "true" : "false");
  Finished(entry.key(), entry.kind);
  return true;
}
}  // namespace conveyor::orchestrator
