#include "orchestrator/scheduler.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/stage_registry.h"
#include "common/status_details.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;
using conveyor::v1::ChainSpec;
using conveyor::v1::StepStatus;

namespace {

std::string StepLabel(const Chain& chain, int step) {
  return absl::StrCat("step ", step, " (",
                      StageName(StepKind(chain.spec().steps(step))), ")");
}

}  // namespace

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
  t.effects.counters.push_back(QueuedCounter(c.steps(0).kind(), 1));
  return t;
}

absl::Time Scheduler::AttemptDeadline(const Chain& chain, int step) const {
  absl::Time deadline = clock_.Now() + StepTimeout(chain.spec().steps(step));
  if (chain.has_deadline()) deadline = std::min(deadline, FromProtoTime(chain.deadline()));
  return deadline;
}

absl::Status Scheduler::ChainTimeoutError(const Chain& chain, absl::string_view what) {
  return absl::DeadlineExceededError(absl::StrCat(
      "chain timeout of ", absl::FormatDuration(FromProtoDuration(chain.spec().timeout())), what));
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
  c.set_progress_percent(ProgressPercent(c));
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
  t.effects.counters.push_back(QueuedCounter(c.steps(first).kind(), 1));
  t.effects.events.push_back(NewEvent(c, ChainEvent::CHAIN_RESUMED, first));
  return t;
}

}  // namespace conveyor::orchestrator
