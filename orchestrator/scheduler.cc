#include "orchestrator/scheduler.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
#include "google/protobuf/util/message_differencer.h"
#include "common/stage_registry.h"
#include "common/status_details.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;
using conveyor::v1::ChainSpec;
using conveyor::v1::State;
using conveyor::v1::StepStatus;

namespace {

int Progress(const Chain& chain) {
  if (chain.steps_size() == 0) return 0;
  int done = 0;
  for (const StepStatus& s : chain.steps()) done += s.state() == conveyor::v1::SUCCEEDED;
  return done * 100 / chain.steps_size();
}

std::string StepLabel(const Chain& chain, int step) {
  return absl::StrCat("step ", step, " (",
                      StageName(StepKind(chain.spec().steps(step))), ")");
}

}  // namespace

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

bool IsTerminal(State state) {
  return state == conveyor::v1::SUCCEEDED || state == conveyor::v1::FAILED ||
         state == conveyor::v1::CANCELLED;
}

int FirstUnfinishedStep(const Chain& chain) {
  for (int i = 0; i < chain.steps_size(); ++i) {
    if (chain.steps(i).state() != conveyor::v1::SUCCEEDED) return i;
  }
  return chain.steps_size();
}

bool ProducesImage(const conveyor::v1::Step& step) {
  const StageInfo* stage = StageOfStep(step);
  return stage != nullptr && stage->produces == DataKind::kImage;
}

int InputBlobIndex(const ChainSpec& spec, int step) {
  for (int k = step - 1; k >= 0; --k) {
    if (ProducesImage(spec.steps(k))) return k + 1;
  }
  return 0;
}

std::vector<int> BlobIndexes(const Chain& chain) {
  std::vector<int> out;
  if (chain.has_inline_source()) out.push_back(0);
  for (int k = 0; k < chain.spec().steps_size(); ++k) {
    if (ProducesImage(chain.spec().steps(k))) out.push_back(k + 1);
  }
  return out;
}

std::string ChainIdFromName(const std::string& name) {
  absl::string_view id = name;
  if (absl::StartsWith(id, "chains/")) id.remove_prefix(7);
  return std::string(id);
}

ChainEvent Scheduler::NewEvent(const Chain& chain, ChainEvent::Type type, int step) const {
  ChainEvent e;
  e.set_chain(chain.name());
  *e.mutable_time() = ToProtoTime(clock_.Now());
  e.set_type(type);
  e.set_step_index(step);
  if (step >= 0 && step < chain.steps_size()) e.set_attempt(chain.steps(step).attempts());
  e.set_chain_state(chain.state());
  e.set_progress_percent(chain.progress_percent());
  return e;
}

Transition Scheduler::Submit(const ChainSpec& spec, const std::string& id,
                             const std::string& idempotency_key,
                             const absl::optional<conveyor::v1::ImageInfo>& inline_source) const {
  const absl::Time now = clock_.Now();
  Transition t;
  Chain& c = t.chain;
  c.set_name(absl::StrCat("chains/", id));
  *c.mutable_spec() = spec;
  c.set_state(conveyor::v1::PENDING);
  for (int i = 0; i < spec.steps_size(); ++i) {
    StepStatus* s = c.add_steps();
    s->set_name(absl::StrCat(c.name(), "/steps/", i));
    s->set_index(i);
    s->set_kind(StepKind(spec.steps(i)));
    s->set_state(conveyor::v1::PENDING);
  }
  *c.mutable_create_time() = ToProtoTime(now);
  *c.mutable_update_time() = ToProtoTime(now);
  if (FromProtoDuration(spec.timeout()) > absl::ZeroDuration()) {
    *c.mutable_deadline() = ToProtoTime(now + FromProtoDuration(spec.timeout()));
  }
  c.set_idempotency_key(idempotency_key);
  if (inline_source.has_value()) *c.mutable_inline_source() = *inline_source;
  c.set_version(1);
  t.effects.enqueue_step = 0;
  t.effects.events.push_back(NewEvent(c, ChainEvent::CHAIN_SUBMITTED, -1));
  t.effects.counters.emplace_back(absl::StrCat(StageName(c.steps(0).kind()), ".queued"), 1);
  return t;
}

absl::Time Scheduler::AttemptDeadline(const Chain& chain, int step) const {
  absl::Time deadline = clock_.Now() + StepTimeout(chain.spec().steps(step));
  if (chain.has_deadline()) deadline = std::min(deadline, FromProtoTime(chain.deadline()));
  return deadline;
}

void Scheduler::FailChain(Chain& c, int step, const absl::Status& error,
                          SideEffects& effects) const {
  const absl::Time now = clock_.Now();
  StepStatus* s = c.mutable_steps(step);
  s->set_state(conveyor::v1::FAILED);
  *s->mutable_end_time() = ToProtoTime(now);
  *s->mutable_error() = ToRpcStatus(error);
  s->clear_next_attempt_time();
  c.set_state(conveyor::v1::FAILED);
  *c.mutable_end_time() = ToProtoTime(now);
  absl::Status chain_error(error.code(),
                           absl::StrCat(StepLabel(c, step), " failed: ", error.message()));
  *c.mutable_error() = ToRpcStatus(chain_error);
  c.set_progress_percent(Progress(c));
  ChainEvent step_failed = NewEvent(c, ChainEvent::STEP_FAILED, step);
  *step_failed.mutable_error() = s->error();
  step_failed.set_worker(s->worker());
  effects.events.push_back(std::move(step_failed));
  ChainEvent chain_failed = NewEvent(c, ChainEvent::CHAIN_FAILED, -1);
  *chain_failed.mutable_error() = c.error();
  effects.events.push_back(std::move(chain_failed));
  effects.counters.emplace_back(absl::StrCat(StageName(s->kind()), ".failed"), 1);
  effects.expire = true;
}

absl::Duration SchedulerOptions::MaxOutage(conveyor::v1::StageKind kind) const {
  auto it = max_outage_by_stage.find(kind);
  return it == max_outage_by_stage.end() ? max_outage : it->second;
}

absl::Status ParseMaxOutage(absl::string_view value, SchedulerOptions& options) {
  for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    absl::string_view stage;
    absl::string_view duration = item;
    if (size_t eq = item.find('='); eq != absl::string_view::npos) {
      stage = item.substr(0, eq);
      duration = item.substr(eq + 1);
    }
    absl::Duration d;
    if (!absl::ParseDuration(duration, &d) || d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--max-outage: '", item, "' is not a positive duration (e.g. 15m) or stage=duration"));
    }
    if (stage.empty()) {
      options.max_outage = d;
      continue;
    }
    const StageInfo* info = FindStageByName(stage);
    if (info == nullptr || info->name != stage) {
      return absl::InvalidArgumentError(absl::StrCat("--max-outage: unknown stage '", stage,
                                                     "' (want one of ", StageNames(), ")"));
    }
    options.max_outage_by_stage[info->kind] = d;
  }
  return absl::OkStatus();
}

absl::Status Scheduler::OutageOver(const StepStatus& s, absl::Time now) const {
  if (!s.has_waiting_since()) return absl::OkStatus();
  const absl::Duration max_outage = options_.MaxOutage(s.kind());
  const absl::Duration waited = now - FromProtoTime(s.waiting_since());
  if (waited < max_outage) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      StageName(s.kind()), " has not served for ", absl::FormatDuration(waited),
      ", longer than its max outage of ", absl::FormatDuration(max_outage), " (last: ",
      s.waiting_reason(), ")"));
}

void Scheduler::MarkWaiting(Chain& c, int step, const absl::Status& reason,
                            SideEffects& effects) const {
  StepStatus* s = c.mutable_steps(step);
  s->set_state(conveyor::v1::PENDING);
  s->clear_next_attempt_time();
  const std::string text =
      absl::StrCat(absl::StatusCodeToString(reason.code()), ": ", reason.message());
  if (s->has_waiting_since() && s->waiting_reason() == text) return;
  s->set_waiting_reason(text);
  if (s->has_waiting_since()) return;  // the same outage, another symptom
  *s->mutable_waiting_since() = ToProtoTime(clock_.Now());
  ChainEvent e = NewEvent(c, ChainEvent::STEP_WAITING, step);
  *e.mutable_error() = ToRpcStatus(reason);
  e.set_coordinator(s->coordinator());
  effects.events.push_back(std::move(e));
}

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
    FailChain(c, step,
              absl::DeadlineExceededError(absl::StrCat(
                  "chain timeout of ", absl::FormatDuration(FromProtoDuration(chain.spec().timeout())),
                  " passed before the step could start", waiting)),
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
                absl::DeadlineExceededError(absl::StrCat(
                    "chain timeout of ", absl::FormatDuration(FromProtoDuration(c.spec().timeout())),
                    " passed while waiting for ", stage, " (", result.status.message(), ")")),
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
    c.set_progress_percent(Progress(c));
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
      t.effects.counters.emplace_back(
          absl::StrCat(StageName(c.steps(step + 1).kind()), ".queued"), 1);
    }
    return t;
  }

  // The chain's own deadline passed: no retry can help.
  if (c.has_deadline() && now >= FromProtoTime(c.deadline())) {
    FailChain(c, step,
              absl::DeadlineExceededError(absl::StrCat(
                  "chain timeout of ", absl::FormatDuration(FromProtoDuration(c.spec().timeout())),
                  " passed during attempt ", attempt, " (", result.status.message(), ")")),
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
    const absl::Duration delay =
        std::min(kDeferralBaseDelay * (1 << std::min(s->deferrals() - 1, 5)), kMaxDeferralDelay) *
        (0.5 + random_.Uniform01());
    const absl::Time due = now + delay;
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
              absl::DeadlineExceededError(absl::StrCat(
                  "chain timeout of ", absl::FormatDuration(FromProtoDuration(c.spec().timeout())),
                  " passes before attempt ", attempt + 1, " would start (last error: ",
                  result.status.message(), ")")),
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
  t.effects.counters.emplace_back(stage + ".queued", 1);
  ChainEvent e = NewEvent(c, ChainEvent::STEP_RETRYING, step);
  *e.mutable_error() = s->error();
  *e.mutable_next_attempt_time() = s->next_attempt_time();
  e.set_worker(result.worker);
  t.effects.events.push_back(std::move(e));
}

absl::StatusOr<Transition> Scheduler::Cancel(const Chain& chain) const {
  if (chain.state() == conveyor::v1::SUCCEEDED) {
    return absl::FailedPreconditionError(
        absl::StrCat(chain.name(), " already SUCCEEDED; nothing to cancel"));
  }
  Transition t;
  t.chain = chain;
  t.previous_state = chain.state();
  if (chain.state() == conveyor::v1::FAILED || chain.state() == conveyor::v1::CANCELLED) {
    t.changed = false;
    return t;
  }
  const absl::Time now = clock_.Now();
  Chain& c = t.chain;
  c.set_version(chain.version() + 1);
  *c.mutable_update_time() = ToProtoTime(now);
  *c.mutable_end_time() = ToProtoTime(now);
  c.set_state(conveyor::v1::CANCELLED);
  *c.mutable_error() = ToRpcStatus(absl::CancelledError("cancelled by CancelChain"));
  const int step = FirstUnfinishedStep(chain);
  if (step < c.steps_size()) {
    StepStatus* s = c.mutable_steps(step);
    s->set_state(conveyor::v1::CANCELLED);
    *s->mutable_end_time() = ToProtoTime(now);
    s->clear_next_attempt_time();
    s->clear_waiting_since();
  }
  ChainEvent e = NewEvent(c, ChainEvent::CHAIN_CANCELLED, -1);
  *e.mutable_error() = c.error();
  t.effects.events.push_back(std::move(e));
  t.effects.publish_cancel = true;
  t.effects.expire = true;
  return t;
}

absl::StatusOr<Transition> Scheduler::Retry(const Chain& chain) const {
  if (chain.state() != conveyor::v1::FAILED && chain.state() != conveyor::v1::CANCELLED) {
    return absl::FailedPreconditionError(
        absl::StrCat(chain.name(), " is ", conveyor::v1::State_Name(chain.state()),
                     "; only FAILED or CANCELLED chains can be retried"));
  }
  const absl::Time now = clock_.Now();
  Transition t;
  t.chain = chain;
  t.previous_state = chain.state();
  Chain& c = t.chain;
  c.set_version(chain.version() + 1);
  *c.mutable_update_time() = ToProtoTime(now);
  c.clear_end_time();
  c.clear_error();
  c.set_state(conveyor::v1::PENDING);
  c.set_retries(chain.retries() + 1);
  if (FromProtoDuration(c.spec().timeout()) > absl::ZeroDuration()) {
    // A resumed chain gets its full timeout again.
    *c.mutable_deadline() = ToProtoTime(now + FromProtoDuration(c.spec().timeout()));
  }
  const int first = FirstUnfinishedStep(chain);
  for (int i = first; i < c.steps_size(); ++i) {
    StepStatus* s = c.mutable_steps(i);
    s->set_state(conveyor::v1::PENDING);
    s->set_attempts(0);
    s->clear_error();
    s->clear_end_time();
    s->clear_start_time();
    s->clear_next_attempt_time();
    s->clear_worker();
    s->clear_waiting_since();
    s->clear_waiting_reason();
  }
  t.effects.enqueue_step = first;
  t.effects.persist = true;
  t.effects.counters.emplace_back(absl::StrCat(StageName(c.steps(first).kind()), ".queued"), 1);
  t.effects.events.push_back(NewEvent(c, ChainEvent::CHAIN_RESUMED, first));
  return t;
}

}  // namespace conveyor::orchestrator
