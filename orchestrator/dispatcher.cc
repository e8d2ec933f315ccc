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

Dispatcher::Dispatcher(ChainStore& store, CancelFeed& cancels, StageClient& stages,
                       const Scheduler& scheduler, const Clock& clock, DispatcherOptions options)
    : store_(store),
      cancels_(cancels),
      stages_(stages),
      scheduler_(scheduler),
      clock_(clock),
      options_(options) {}

Dispatcher::~Dispatcher() { Stop(absl::ZeroDuration()); }

void Dispatcher::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
    threads_.emplace_back([this] { CancelLoop(); });
    threads_.emplace_back([this] { ReaderLoop(); });
    threads_.emplace_back([this] { MaintenanceLoop(); });
    threads_.emplace_back([this] { CompleterLoop(); });
    threads_.emplace_back([this] { ProberLoop(); });
  }
  // Pub/sub does not keep messages for late subscribers: a CancelChain
  // published before the subscription exists would never reach a call this
  // replica starts. Wait for it (bounded: with Redis down, start anyway).
  subscribed_.WaitForNotificationWithTimeout(absl::Seconds(2));
}

void Dispatcher::Stop(absl::Duration grace) {
  std::vector<std::shared_ptr<StageCallHandle>> to_cancel;
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stopping_) {
      if (!started_) stopping_ = true;
      return;
    }
    stopping_ = true;
    capacity_cv_.SignalAll();
    maintenance_cv_.SignalAll();
    prober_cv_.SignalAll();
    // Let in-flight calls finish within the grace period.
    const absl::Time until = clock_.Now() + grace;
    while (!in_flight_.empty() && clock_.Now() < until) {
      completion_cv_.WaitWithTimeout(&mu_, std::min(until - clock_.Now(), absl::Milliseconds(50)));
    }
    cancelling_all_ = true;
    for (auto& [id, call] : in_flight_) {
      if (call->handle) to_cancel.push_back(call->handle);
    }
  }
  // Cancelled calls are not recorded: their entries stay pending and another
  // replica reclaims them after the lease (so do waiting steps).
  LogLine(LogLevel::kDebug).Add("msg", "dispatcher: drained")
      .Add("cancelling", static_cast<int64_t>(to_cancel.size()));
  for (auto& handle : to_cancel) handle->Cancel();
  {
    absl::MutexLock lock(&mu_);
    const absl::Time until = clock_.Now() + absl::Seconds(5);
    while (!in_flight_.empty() && clock_.Now() < until) {
      completion_cv_.WaitWithTimeout(&mu_, std::min(until - clock_.Now(), absl::Milliseconds(50)));
    }
    completion_cv_.SignalAll();
  }
  LogLine(LogLevel::kDebug).Add("msg", "dispatcher: joining threads");
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  LogLine(LogLevel::kDebug).Add("msg", "dispatcher: stopped");
}

void Dispatcher::NotifyRetryScheduled(absl::Time due) {
  absl::MutexLock lock(&mu_);
  if (due < next_due_) {
    next_due_ = due;
    maintenance_cv_.Signal();
  }
}

std::map<std::string, int64_t> Dispatcher::InFlightByStage() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, int64_t> out;
  for (const auto& [kind, n] : in_flight_by_stage_) out[std::string(StageName(kind))] = n;
  return out;
}

bool Dispatcher::HasCapacity(StageKind kind) {
  auto it = in_flight_by_stage_.find(kind);
  const int in_flight = it == in_flight_by_stage_.end() ? 0 : it->second;
  return in_flight < Flow(kind).window;
}

int Dispatcher::TotalInFlight() const {
  int total = 0;
  for (const auto& [kind, n] : in_flight_by_stage_) total += n;
  return total;
}

std::vector<QueueEntry> Dispatcher::HeldEntries() const {
  std::vector<QueueEntry> held;
  for (const auto& [id, call] : in_flight_) held.push_back(call->entry);
  for (const QueueEntry& e : backlog_) held.push_back(e);
  for (const auto& [kind, flow] : flows_) {
    for (const Waiting& w : flow.waiting) held.push_back(w.entry);
  }
  for (const auto& [due, e] : deferred_) held.push_back(e);
  return held;
}

void Dispatcher::ReaderLoop() {
  const int total_cap = options_.max_in_flight * static_cast<int>(Stages().size());
  int failures = 0;
  while (true) {
    int free_slots = 0;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ &&
             (TotalInFlight() + static_cast<int>(backlog_.size()) >= total_cap ||
              TotalWaiting() >= options_.max_waiting)) {
        capacity_cv_.WaitWithTimeout(&mu_, absl::Seconds(1));
      }
      if (stopping_) return;
      free_slots = total_cap - TotalInFlight() - static_cast<int>(backlog_.size());
    }
    absl::StatusOr<std::vector<QueueEntry>> entries = store_.ClaimReady(
        options_.replica_name, std::clamp(free_slots, 1, 32), absl::Milliseconds(500));
    if (!entries.ok()) {
      if (failures++ % 20 == 0) {
        LogLine(LogLevel::kWarning).Add("msg", "cannot read ready steps")
            .Add("error", entries.status().ToString());
      }
      absl::MutexLock lock(&mu_);
      if (!stopping_) capacity_cv_.WaitWithTimeout(&mu_, absl::Milliseconds(250));
      continue;
    }
    failures = 0;
    for (const QueueEntry& e : *entries) Handle(e);
  }
}

void Dispatcher::Handle(const QueueEntry& entry) {
  if (entry.chain_id.empty()) {
    store_.Ack(entry, {}).IgnoreError();
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    // Stopping: leave the entry pending; another replica reclaims it.
    if (stopping_) return;
    if (waiting_ids_.count(entry.key()) > 0) return;  // ours, waiting
    if (in_flight_.count(entry.key()) > 0) {
      // Still held by the handling that just parked it (the prober can
      // release an entry before that handling frees its slot): look again
      // shortly instead of dropping it.
      deferred_.emplace_back(clock_.Now() + dispatch::kRedisRetryDelay, entry);
      prober_cv_.Signal();
      return;
    }
    // A stage in an outage takes no calls: its entries go straight to wait.
    if (Flow(entry.kind).outage.ok() && !HasCapacity(entry.kind)) {
      backlog_.push_back(entry);
      return;
    }
    Reserve(entry);
  }
  if (!Claim(entry)) Finished(entry.key(), entry.kind);
}

void Dispatcher::Reserve(const QueueEntry& entry) {
  auto reserved = std::make_shared<InFlight>();
  reserved->entry = entry;
  in_flight_[entry.key()] = reserved;
  ++in_flight_by_stage_[entry.kind];
}

bool Dispatcher::Claim(const QueueEntry& entry) {
  ClaimContext context;
  context.coordinator = options_.replica_name;
  context.reclaimed = entry.reclaimed;
  {
    absl::MutexLock lock(&mu_);
    context.stage_outage = Flow(entry.kind).outage;
  }
  for (int round = 0; round < dispatch::kMaxCasRounds; ++round) {
    StoredChain stored;
    absl::optional<std::string> input;
    absl::Status loaded_status;
    if (dispatch::NeedsInput(entry.kind) && context.stage_outage.ok()) {
      auto loaded = store_.LoadWithBlob(entry.chain_id, entry.input_blob);
      loaded_status = loaded.status();
      if (loaded.ok()) {
        stored = std::move(loaded->first);
        input = std::move(loaded->second);
      }
    } else {
      auto loaded = store_.Load(entry.chain_id);
      loaded_status = loaded.status();
      if (loaded.ok()) stored = *std::move(loaded);
    }
    if (loaded_status.code() == absl::StatusCode::kNotFound) {
      store_.Ack(entry, dispatch::FreshCounters(entry)).IgnoreError();
      return false;
    }
    if (!loaded_status.ok()) {
      Defer(entry);
      return false;
    }
    ClaimDecision d = scheduler_.OnClaim(stored.chain, entry.step,
                                         stored.queue_token == entry.token, context);
    ApplyExtras extras;
    if (d.action != ClaimDecision::Action::kWait) extras.counters = dispatch::FreshCounters(entry);
    if (d.action == ClaimDecision::Action::kSkip) {
      LogLine(LogLevel::kDebug).Add("msg", "skip entry").Add("chain", entry.chain_id)
          .Add("step", entry.step).Add("reason", d.reason);
      store_.Ack(entry, extras.counters).IgnoreError();
      return false;
    }
    if (d.action == ClaimDecision::Action::kFinish) extras.ack = &entry;
    absl::Status applied = d.transition.changed
                               ? store_.Apply(stored.chain.version(), d.transition, extras)
                               : absl::OkStatus();
    if (IsStaleVersion(applied)) continue;
    if (!applied.ok()) {
      LogLine(LogLevel::kWarning).Add("msg", "cannot record step start")
          .Add("chain", entry.chain_id).Add("error", applied.ToString());
      if (applied.code() == absl::StatusCode::kUnavailable) Defer(entry);
      return false;
    }
    if (d.action == ClaimDecision::Action::kFinish) return false;
    if (d.action == ClaimDecision::Action::kWait) {
      absl::MutexLock lock(&mu_);
      Park(entry, d.transition.chain, context.stage_outage);
      return false;
    }
    StartCall(entry, d, std::move(input));
    return true;
  }
  return false;
}

void Dispatcher::StartCall(const QueueEntry& entry, const ClaimDecision& decision,
                           absl::optional<std::string> input) {
  const Chain& chain = decision.transition.chain;
  const int step = entry.step;
  StageCall call;
  call.kind = entry.kind;
  call.context.set_chain(chain.name());
  call.context.set_tenant(chain.tenant());
  call.context.set_step_index(step);
  call.context.set_attempt(chain.steps(step).attempts());
  call.step = chain.spec().steps(step);
  call.deadline = scheduler_.AttemptDeadline(chain, step);
  if (dispatch::NeedsInput(entry.kind) && input.has_value()) {
    const int blob = InputBlobIndex(chain.spec(), step);
    const conveyor::v1::ImageInfo& info =
        blob == 0 ? chain.inline_source() : chain.steps(blob - 1).output().image();
    call.input.set_data(std::move(*input));
    call.input.set_media_type(info.media_type());
    call.input.set_width(info.width());
    call.input.set_height(info.height());
  }
  if (dispatch::ReportsOutputs(entry.kind)) {
    call.report.set_chain(chain.name());
    *call.report.mutable_labels() = chain.spec().labels();
    for (int i = 0; i < step; ++i) *call.report.add_outputs() = chain.steps(i).output();
  }
  std::shared_ptr<InFlight> record;
  {
    absl::MutexLock lock(&mu_);
    record = in_flight_[entry.key()];
    record->entry.counted = true;  // the claim took it off the queued counter
    record->chain = chain;
    record->step = step;
    record->attempt = chain.steps(step).attempts();
    record->started = clock_.Now();
  }
  auto done = [this, record](StageReply reply) {
    absl::MutexLock lock(&mu_);
    completions_.push_back(Completion{record, std::move(reply)});
    completion_cv_.Signal();
  };
  if (dispatch::NeedsInput(entry.kind) && !input.has_value()) {
    StageReply reply;
    reply.status = absl::DataLossError(absl::StrCat(
        "the input image of step ", step, " is no longer stored (blob ", entry.input_blob, ")"));
    done(std::move(reply));
    return;
  }
  std::shared_ptr<StageCallHandle> handle = stages_.Start(std::move(call), std::move(done));
  bool cancel_now = false;
  {
    absl::MutexLock lock(&mu_);
    record->handle = handle;
    // Cancelled meanwhile, or the drain's grace ran out after this call was
    // reserved (Stop() only cancels calls whose handle it saw). A call that
    // starts while the replica drains runs: its RUNNING is recorded already,
    // and finishing it beats re-running it elsewhere.
    cancel_now = record->cancel_requested || cancelling_all_;
  }
  if (cancel_now && handle) handle->Cancel();
}

void Dispatcher::Finished(std::string entry_key, StageKind kind) {
  // The freed slot goes to the backlog's next startable entry. A loop, not
  // recursion: an entry that does not start frees its slot at once.
  while (true) {
    QueueEntry next;
    bool have_next = false;
    {
      absl::MutexLock lock(&mu_);
      in_flight_.erase(entry_key);
      --in_flight_by_stage_[kind];
      for (auto it = backlog_.begin(); it != backlog_.end() && !stopping_; ++it) {
        if (!Flow(it->kind).outage.ok() || HasCapacity(it->kind)) {
          next = *it;
          backlog_.erase(it);
          Reserve(next);
          have_next = true;
          break;
        }
      }
      capacity_cv_.SignalAll();
      completion_cv_.SignalAll();
    }
    if (!have_next || Claim(next)) return;
    entry_key = next.key();
    kind = next.kind;
  }
}

void Dispatcher::Defer(const QueueEntry& entry) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  deferred_.emplace_back(clock_.Now() + dispatch::kRedisRetryDelay, entry);
  prober_cv_.Signal();
}
}  // namespace conveyor::orchestrator
