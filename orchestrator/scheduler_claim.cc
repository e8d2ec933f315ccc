#include "orchestrator/scheduler.h"

#include "absl/strings/str_cat.h"
#include "common/stage_registry.h"
#include "common/status_details.h"
#include "google/protobuf/util/message_differencer.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;
using conveyor::v1::StepStatus;

ClaimDecision Scheduler::OnClaim(const Chain& chain, int step, bool token_matches,
                                 const ClaimContext& context) const {
  ClaimDecision d;
  if (IsTerminal(chain.state())) {
    d.reason = absl::StrCat("chain is ", conveyor::v1::State_Name(chain.state()));
    return d;
  }
  if (!token_matches) {
    d.reason = "stale queue entry";
    return d;
  }
  if (step < 0 || step >= chain.steps_size() || step != FirstUnfinishedStep(chain)) {
    d.reason = absl::StrCat("step ", step, " is not the chain's next step");
    return d;
  }
  const absl::Time now = clock_.Now();
  d.transition.chain = chain;
  d.transition.previous_state = chain.state();
  Chain& c = d.transition.chain;
  c.set_version(chain.version() + 1);
  *c.mutable_update_time() = ToProtoTime(now);
  StepStatus* s = c.mutable_steps(step);

  if (chain.has_deadline() && now >= FromProtoTime(chain.deadline())) {
    d.action = ClaimDecision::Action::kFinish;
    std::string waiting;
    if (s->has_waiting_since()) waiting = absl::StrCat(" (waiting for ", StageName(s->kind()),
                                                       ": ", s->waiting_reason(), ")");
    FailChain(
        c, step,
        ChainTimeoutError(chain, absl::StrCat(" passed before the step could start", waiting)),
        d.transition.effects);
    return d;
  }
  if (absl::Status over = OutageOver(*s, now); !over.ok()) {
    d.action = ClaimDecision::Action::kFinish;
    FailChain(c, step, over, d.transition.effects);
    return d;
  }
  const bool lost_attempt = s->state() == conveyor::v1::RUNNING;
  if (context.reclaimed && !s->coordinator().empty() && s->coordinator() != context.coordinator &&
      (lost_attempt || s->has_waiting_since())) {
    ChainEvent e = NewEvent(c, ChainEvent::STEP_RECLAIMED, step);
    e.set_coordinator(s->coordinator());
    *e.mutable_error() = ToRpcStatus(absl::UnavailableError(absl::StrCat(
        "coordinator ", s->coordinator(), " stopped renewing its lease; taken over by ",
        context.coordinator)));
    d.transition.effects.events.push_back(std::move(e));
  }
  const EffectiveRetryPolicy policy = ResolveRetryPolicy(chain.spec().steps(step).retry());
  if (lost_attempt && s->attempts() >= policy.max_attempts) {
    // Taken over from a dead replica with no attempts left.
    d.action = ClaimDecision::Action::kFinish;
    FailChain(c, step,
              absl::UnavailableError(absl::StrCat(
                  "the coordinator running attempt ", s->attempts(),
                  " stopped (lease expired) and no attempts are left of ", policy.max_attempts)),
              d.transition.effects);
    return d;
  }
  s->set_coordinator(context.coordinator);
  if (!context.stage_outage.ok()) {
    d.action = ClaimDecision::Action::kWait;
    // A lost attempt stays spent: the dead replica may have reached a worker.
    MarkWaiting(c, step, context.stage_outage, d.transition.effects);
    if (c.state() == conveyor::v1::PENDING) c.set_state(conveyor::v1::RUNNING);
    // Parking a step that already waits for the same reason writes nothing.
    d.transition.changed =
        !d.transition.effects.events.empty() || c.state() != chain.state() ||
        !google::protobuf::util::MessageDifferencer::Equals(chain.steps(step), *s);
    return d;
  }
  d.action = ClaimDecision::Action::kStart;
  if (s->attempts() == 0 || !s->has_start_time()) *s->mutable_start_time() = ToProtoTime(now);
  s->set_state(conveyor::v1::RUNNING);
  // Count the attempt before dispatch: a crash mid-call must still spend retry
  // budget.
  s->set_attempts(s->attempts() + 1);
  s->clear_next_attempt_time();
  c.set_state(conveyor::v1::RUNNING);
  ChainEvent started = NewEvent(c, ChainEvent::STEP_STARTED, step);
  started.set_coordinator(context.coordinator);
  d.transition.effects.events.push_back(std::move(started));
  return d;
}

}  // namespace conveyor::orchestrator
