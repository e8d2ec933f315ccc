#include "orchestrator/dispatcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "orchestrator/chain_validator.h"
#include "common/stage_registry.h"
#include "common/log.h"
#include "common/status_details.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;
using conveyor::v1::StageKind;

namespace {

// The step's call carries the image the step before produced.
bool NeedsInput(StageKind kind) {
  const StageInfo* stage = FindStage(kind);
  return stage != nullptr && stage->consumes == DataKind::kImage;
}

// The step's call carries every earlier step's output.
bool ReportsOutputs(StageKind kind) {
  const StageInfo* stage = FindStage(kind);
  return stage != nullptr && stage->reports_outputs;
}

constexpr int kMaxCasRounds = 5;
constexpr absl::Duration kPromoteRecheck = absl::Milliseconds(250);
constexpr absl::Duration kReconcileInterval = absl::Seconds(1);
// Redis could not be reached while handling an entry or recording a result:
// try again after this long (the entry stays heartbeated meanwhile).
constexpr absl::Duration kRedisRetryDelay = absl::Milliseconds(250);
// Calls a stage may take at once right after an outage; the window then
// grows by one per delivered call.
constexpr int kRecoveryWindow = 4;

std::vector<std::pair<std::string, int>> FreshCounters(const QueueEntry& entry) {
  if (entry.counted) return {};
  return {{absl::StrCat(StageName(entry.kind), ".queued"), -1}};
}

// When a waiting step must be released whatever its stage does: the chain's
// deadline or the end of the stage's max outage.
absl::Time WaitExpiry(const Chain& chain, int step, const SchedulerOptions& options) {
  absl::Time expires = absl::InfiniteFuture();
  if (chain.has_deadline()) expires = FromProtoTime(chain.deadline());
  if (step >= 0 && step < chain.steps_size() && chain.steps(step).has_waiting_since()) {
    const conveyor::v1::StepStatus& s = chain.steps(step);
    expires = std::min(expires, FromProtoTime(s.waiting_since()) + options.MaxOutage(s.kind()));
  }
  return expires;
}

}  // namespace

Dispatcher::Dispatcher(ChainStore& store, CancelFeed& cancels, StageClient& stages,
                       const Scheduler& scheduler, DispatcherOptions options)
    : store_(store), cancels_(cancels), stages_(stages), scheduler_(scheduler), options_(options) {}

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
    const absl::Time until = absl::Now() + grace;
    while (!in_flight_.empty() && absl::Now() < until) {
      completion_cv_.WaitWithDeadline(&mu_, std::min(until, absl::Now() + absl::Milliseconds(50)));
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
    const absl::Time until = absl::Now() + absl::Seconds(5);
    while (!in_flight_.empty() && absl::Now() < until) {
      completion_cv_.WaitWithDeadline(&mu_, std::min(until, absl::Now() + absl::Milliseconds(50)));
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

std::map<std::string, int64_t> Dispatcher::WaitingByStage() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, int64_t> out;
  for (const auto& [kind, flow] : flows_) {
    out[std::string(StageName(kind))] = static_cast<int64_t>(flow.waiting.size());
  }
  return out;
}

Dispatcher::StageFlow& Dispatcher::Flow(StageKind kind) {
  auto [it, inserted] = flows_.try_emplace(kind);
  if (inserted) it->second.window = options_.max_in_flight;
  return it->second;
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

int Dispatcher::TotalWaiting() const { return static_cast<int>(waiting_ids_.size()); }

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

void Dispatcher::MaintenanceLoop() {
  const absl::Duration period = options_.lease_timeout / 4;
  absl::Time next_heartbeat = absl::InfinitePast();
  absl::Time next_reclaim = absl::Now() + period;
  absl::Time next_reconcile = absl::Now() + kReconcileInterval;
  // Since when this replica's heartbeats have been going through. After
  // Redis was away every lease looks expired, live replicas' too: reclaim
  // only once every replica has had a lease to heartbeat again.
  absl::Time heartbeats_ok_since = absl::InfiniteFuture();
  while (true) {
    const absl::Time now = absl::Now();
    if (now >= next_heartbeat) {
      std::vector<QueueEntry> mine;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        mine = HeldEntries();
      }
      absl::Status hb = store_.Heartbeat(options_.replica_name, mine);
      ReplicaInfo me;
      me.name = options_.replica_name;
      me.address = options_.address;
      me.heartbeat = now;
      me.in_flight = InFlightByStage();
      me.waiting = WaitingByStage();
      absl::Status report = store_.ReportReplica(me, options_.lease_timeout * 3);
      if (!hb.ok() || !report.ok()) {
        if (heartbeats_ok_since != absl::InfiniteFuture()) {
          LogLine(LogLevel::kWarning).Add("msg", "heartbeat failed")
              .Add("error", (!hb.ok() ? hb : report).ToString());
        }
        heartbeats_ok_since = absl::InfiniteFuture();
      } else if (heartbeats_ok_since == absl::InfiniteFuture()) {
        heartbeats_ok_since = now;
      }
      next_heartbeat = now + period;
    }
    if (now >= next_reclaim && now - heartbeats_ok_since >= options_.lease_timeout) {
      // A dead replica may have left many entries: take them in batches (the
      // ones beyond this replica's capacity wait in the backlog, heartbeated).
      constexpr int kReclaimBatch = 64;
      for (int round = 0; round < 16; ++round) {
        absl::StatusOr<std::vector<QueueEntry>> reclaimed =
            store_.Reclaim(options_.replica_name, options_.lease_timeout, kReclaimBatch);
        if (!reclaimed.ok()) break;
        for (const QueueEntry& e : *reclaimed) {
          LogLine(LogLevel::kInfo).Add("msg", "reclaimed step").Add("chain", e.chain_id)
              .Add("step", e.step).Add("entry", e.id);
          Handle(e);
        }
        absl::MutexLock lock(&mu_);
        if (stopping_ || static_cast<int>(reclaimed->size()) < kReclaimBatch ||
            static_cast<int>(backlog_.size()) >= options_.max_in_flight * static_cast<int>(Stages().size())) {
          break;
        }
      }
      next_reclaim = now + period;
    } else if (now >= next_reclaim) {
      next_reclaim = now + period;
    }
    bool reconcile = false;
    {
      absl::MutexLock lock(&mu_);
      reconcile = reconcile_now_ || now >= next_reconcile;
      reconcile_now_ = false;
    }
    if (reconcile) {
      Reconcile();
      next_reconcile = now + kReconcileInterval;
    }
    bool promote = false;
    {
      absl::MutexLock lock(&mu_);
      promote = now >= next_due_;
    }
    if (promote) {
      absl::StatusOr<absl::optional<absl::Time>> next = store_.PromoteDue(now);
      absl::MutexLock lock(&mu_);
      // Other replicas schedule retries too: look again at least every 250 ms.
      next_due_ = now + kPromoteRecheck;
      if (next.ok() && next->has_value()) next_due_ = std::min(next_due_, **next);
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (reconcile_now_) continue;
    const absl::Time wake = std::min({next_heartbeat, next_reclaim, next_due_, next_reconcile});
    if (wake > absl::Now()) maintenance_cv_.WaitWithDeadline(&mu_, wake);
  }
}

void Dispatcher::Reconcile() {
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    for (const auto& [id, call] : in_flight_) ids.push_back(call->entry.chain_id);
    for (const auto& [kind, flow] : flows_) {
      for (const Waiting& w : flow.waiting) ids.push_back(w.entry.chain_id);
    }
  }
  if (ids.empty()) return;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  absl::StatusOr<std::vector<absl::optional<conveyor::v1::State>>> states = store_.States(ids);
  if (!states.ok()) return;
  std::set<std::string> ended;
  for (size_t i = 0; i < ids.size(); ++i) {
    const absl::optional<conveyor::v1::State>& state = (*states)[i];
    if (!state.has_value() || IsTerminal(*state)) ended.insert(ids[i]);
  }
  if (ended.empty()) return;
  std::vector<std::shared_ptr<StageCallHandle>> handles;
  std::vector<QueueEntry> dropped;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, call] : in_flight_) {
      if (ended.count(call->entry.chain_id) == 0) continue;
      if (call->handle) {
        handles.push_back(call->handle);
      } else {
        call->cancel_requested = true;
      }
    }
    for (auto& [kind, flow] : flows_) {
      auto gone = std::stable_partition(flow.waiting.begin(), flow.waiting.end(),
                                        [&](const Waiting& w) {
                                          return ended.count(w.entry.chain_id) == 0;
                                        });
      for (auto it = gone; it != flow.waiting.end(); ++it) {
        dropped.push_back(it->entry);
        waiting_ids_.erase(it->entry.key());
      }
      flow.waiting.erase(gone, flow.waiting.end());
    }
    if (!dropped.empty()) capacity_cv_.SignalAll();
  }
  // The chain ended while this replica held its step (usually a cancel whose
  // pub/sub message this replica missed): stop the work.
  for (auto& h : handles) {
    LogLine(LogLevel::kInfo).Add("msg", "reconcile: cancelling call of an ended chain");
    h->Cancel();
  }
  for (const QueueEntry& e : dropped) store_.Ack(e, FreshCounters(e)).IgnoreError();
}

void Dispatcher::CompleterLoop() {
  while (true) {
    Completion c;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        const absl::Time now = absl::Now();
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
            &mu_, completions_.empty() ? absl::Milliseconds(500) : kRedisRetryDelay);
      }
    }
    if (!Complete(c)) {
      c.due = absl::Now() + kRedisRetryDelay;
      absl::MutexLock lock(&mu_);
      completions_.push_back(std::move(c));
    }
  }
}

void Dispatcher::CancelLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    absl::StatusOr<absl::optional<CancelNotice>> notice =
        cancels_.Next(absl::Milliseconds(250));
    if (!notice.ok()) {
      absl::MutexLock lock(&mu_);
      if (!stopping_) maintenance_cv_.WaitWithTimeout(&mu_, absl::Milliseconds(500));
      continue;
    }
    if (!notice->has_value()) continue;
    if ((*notice)->kind == CancelNotice::Kind::kSubscribed) {
      if (!subscribed_.HasBeenNotified()) {
        subscribed_.Notify();
      } else {
        // Notices sent while we were not subscribed are gone: compare what
        // runs here with the recorded states instead.
        absl::MutexLock lock(&mu_);
        reconcile_now_ = true;
        maintenance_cv_.Signal();
      }
      continue;
    }
    const std::string& chain_id = (*notice)->chain_id;
    std::vector<std::shared_ptr<StageCallHandle>> handles;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [id, call] : in_flight_) {
        if (call->entry.chain_id != chain_id) continue;
        if (call->handle) {
          handles.push_back(call->handle);
        } else {
          call->cancel_requested = true;
        }
      }
    }
    for (auto& h : handles) {
      LogLine(LogLevel::kInfo).Add("msg", "cancelling in-flight call").Add("chain", chain_id);
      h->Cancel();
    }
  }
}

void Dispatcher::ProberLoop() {
  while (true) {
    std::vector<StageKind> in_outage;
    std::vector<QueueEntry> release;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      const absl::Time now = absl::Now();
      for (auto& [kind, flow] : flows_) {
        if (!flow.outage.ok() && flow.next_probe <= now) {
          in_outage.push_back(kind);
          flow.next_probe = now + options_.probe_interval;
        }
        // The chain's deadline or the stage's max outage is over: release the
        // entry; its claim fails the step.
        auto expired = std::stable_partition(flow.waiting.begin(), flow.waiting.end(),
                                             [&](const Waiting& w) { return w.expires > now; });
        for (auto it = expired; it != flow.waiting.end(); ++it) {
          waiting_ids_.erase(it->entry.key());
          release.push_back(it->entry);
        }
        flow.waiting.erase(expired, flow.waiting.end());
      }
      while (!deferred_.empty() && deferred_.front().first <= now) {
        release.push_back(deferred_.front().second);
        deferred_.pop_front();
      }
    }
    for (StageKind kind : in_outage) {
      // By the stage's own service name: a target serving another stage
      // (WRONG_SERVICE) keeps its steps waiting.
      if (!stages_.CheckHealth(kind, options_.probe_interval * 2).serving()) continue;
      std::vector<Waiting> waiting;
      {
        absl::MutexLock lock(&mu_);
        StageFlow& flow = Flow(kind);
        if (flow.outage.ok()) continue;
        flow.outage = absl::OkStatus();
        flow.window = std::min(kRecoveryWindow, options_.max_in_flight);
        waiting.swap(flow.waiting);
        for (const Waiting& w : waiting) waiting_ids_.erase(w.entry.key());
        capacity_cv_.SignalAll();
      }
      LogLine(LogLevel::kInfo).Add("msg", "stage serves again; releasing waiting steps")
          .Add("stage", StageName(kind)).Add("waiting", static_cast<int64_t>(waiting.size()));
      // Highest priority first, then in the order they began to wait.
      std::stable_sort(waiting.begin(), waiting.end(), [](const Waiting& a, const Waiting& b) {
        if (a.entry.priority != b.entry.priority) return a.entry.priority > b.entry.priority;
        return a.sequence < b.sequence;
      });
      for (Waiting& w : waiting) release.push_back(std::move(w.entry));
    }
    for (const QueueEntry& e : release) Handle(e);
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    bool busy = !deferred_.empty();
    for (const auto& [kind, flow] : flows_) busy = busy || !flow.outage.ok() || !flow.waiting.empty();
    prober_cv_.WaitWithTimeout(&mu_, busy ? options_.probe_interval : absl::Seconds(5));
  }
}

void Dispatcher::Park(QueueEntry entry, const Chain& chain, const absl::Status& reason) {
  if (waiting_ids_.count(entry.key()) > 0) return;
  StageFlow& flow = Flow(entry.kind);
  EnterOutage(flow, entry.kind, reason);
  waiting_ids_.insert(entry.key());
  Waiting w;
  w.expires = WaitExpiry(chain, entry.step, scheduler_.options());
  w.sequence = waiting_sequence_++;
  w.entry = std::move(entry);
  flow.waiting.push_back(std::move(w));
}

void Dispatcher::EnterOutage(StageFlow& flow, StageKind kind, const absl::Status& reason) {
  if (!flow.outage.ok()) return;
  LogLine(LogLevel::kWarning).Add("msg", "stage outage: steps wait for it")
      .Add("stage", StageName(kind)).Add("reason", reason.ToString());
  flow.outage = reason;
  prober_cv_.Signal();
}

void Dispatcher::Defer(const QueueEntry& entry) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  deferred_.emplace_back(absl::Now() + kRedisRetryDelay, entry);
  prober_cv_.Signal();
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
      deferred_.emplace_back(absl::Now() + kRedisRetryDelay, entry);
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
  for (int round = 0; round < kMaxCasRounds; ++round) {
    StoredChain stored;
    absl::optional<std::string> input;
    absl::Status loaded_status;
    if (NeedsInput(entry.kind) && context.stage_outage.ok()) {
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
      store_.Ack(entry, FreshCounters(entry)).IgnoreError();
      return false;
    }
    if (!loaded_status.ok()) {
      Defer(entry);
      return false;
    }
    ClaimDecision d = scheduler_.OnClaim(stored.chain, entry.step,
                                         stored.queue_token == entry.token, context);
    ApplyExtras extras;
    if (d.action != ClaimDecision::Action::kWait) extras.counters = FreshCounters(entry);
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
  call.context.set_step_index(step);
  call.context.set_attempt(chain.steps(step).attempts());
  call.step = chain.spec().steps(step);
  call.deadline = scheduler_.AttemptDeadline(chain, step);
  if (NeedsInput(entry.kind) && input.has_value()) {
    const int blob = InputBlobIndex(chain.spec(), step);
    const conveyor::v1::ImageInfo& info =
        blob == 0 ? chain.inline_source() : chain.steps(blob - 1).output().image();
    call.input.set_data(std::move(*input));
    call.input.set_media_type(info.media_type());
    call.input.set_width(info.width());
    call.input.set_height(info.height());
  }
  if (ReportsOutputs(entry.kind)) {
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
    record->started = absl::Now();
  }
  auto done = [this, record](StageReply reply) {
    absl::MutexLock lock(&mu_);
    completions_.push_back(Completion{record, std::move(reply)});
    completion_cv_.Signal();
  };
  if (NeedsInput(entry.kind) && !input.has_value()) {
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
  result.status = reply.status;
  result.output = reply.output;
  result.worker = reply.worker;
  result.not_delivered = reply.not_delivered;
  result.duration = absl::Now() - call->started;
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
  for (int round = 0; round < kMaxCasRounds; ++round) {
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
      extras.counters.emplace_back(absl::StrCat(StageName(entry.kind), ".queued"), 1);
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

}  // namespace conveyor::orchestrator
