#include "orchestrator/dispatcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "orchestrator/chain_validator.h"
#include "orchestrator/redis/redis_keys.h"
#include "stages/common/log.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;
using conveyor::v1::StageKind;

namespace {

bool NeedsInput(StageKind kind) {
  return kind == conveyor::v1::STAGE_KIND_RESIZE || kind == conveyor::v1::STAGE_KIND_FILTER ||
         kind == conveyor::v1::STAGE_KIND_UPLOAD;
}

constexpr int kMaxCasRounds = 5;
constexpr absl::Duration kPromoteRecheck = absl::Milliseconds(250);

std::vector<std::pair<std::string, int>> FreshCounters(const QueueEntry& entry) {
  if (entry.reclaimed) return {};
  return {{absl::StrCat(StageName(entry.kind), ".queued"), -1}};
}

}  // namespace

Dispatcher::Dispatcher(ChainStore& store, RedisConnectionPool& pool, StageClient& stages,
                       const Scheduler& scheduler, DispatcherOptions options)
    : store_(store), pool_(pool), stages_(stages), scheduler_(scheduler), options_(options) {}

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
  // replica reclaims them after the lease.
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

bool Dispatcher::HasCapacity(StageKind kind) const {
  auto it = in_flight_by_stage_.find(kind);
  return it == in_flight_by_stage_.end() || it->second < options_.max_in_flight;
}

int Dispatcher::TotalInFlight() const {
  int total = 0;
  for (const auto& [kind, n] : in_flight_by_stage_) total += n;
  return total;
}

void Dispatcher::ReaderLoop() {
  const int total_cap = options_.max_in_flight * 5;
  int failures = 0;
  while (true) {
    int free_slots = 0;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ &&
             TotalInFlight() + static_cast<int>(backlog_.size()) >= total_cap) {
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
  absl::Time next_heartbeat = absl::InfinitePast();
  absl::Time next_reclaim = absl::Now() + options_.lease_timeout / 2;
  while (true) {
    const absl::Time now = absl::Now();
    if (now >= next_heartbeat) {
      std::vector<QueueEntry> mine;
      ReplicaInfo me;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        for (const auto& [id, call] : in_flight_) mine.push_back(call->entry);
        for (const QueueEntry& e : backlog_) mine.push_back(e);
      }
      absl::Status hb = store_.Heartbeat(options_.replica_name, mine);
      me.name = options_.replica_name;
      me.address = options_.address;
      me.heartbeat = now;
      me.in_flight = InFlightByStage();
      absl::Status report = store_.ReportReplica(me, options_.lease_timeout * 3);
      if (!hb.ok() || !report.ok()) {
        LogLine(LogLevel::kWarning).Add("msg", "heartbeat failed")
            .Add("error", (!hb.ok() ? hb : report).ToString());
      }
      next_heartbeat = now + options_.lease_timeout / 3;
    }
    if (now >= next_reclaim) {
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
            static_cast<int>(backlog_.size()) >= options_.max_in_flight * 5) {
          break;
        }
      }
      next_reclaim = now + options_.lease_timeout / 2;
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
    const absl::Time wake = std::min({next_heartbeat, next_reclaim, next_due_});
    if (wake > absl::Now()) maintenance_cv_.WaitWithDeadline(&mu_, wake);
  }
}

void Dispatcher::CompleterLoop() {
  while (true) {
    Completion c;
    {
      absl::MutexLock lock(&mu_);
      while (completions_.empty() && !(stopping_ && in_flight_.empty())) {
        completion_cv_.WaitWithTimeout(&mu_, absl::Milliseconds(500));
      }
      if (completions_.empty()) return;
      c = std::move(completions_.front());
      completions_.pop_front();
    }
    Complete(std::move(c));
  }
}

void Dispatcher::CancelLoop() {
  std::unique_ptr<RedisConnection> conn;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    if (conn == nullptr || !conn->connected()) {
      conn = pool_.NewConnection(absl::Seconds(2));
      absl::StatusOr<RedisValue> sub = conn->Command({"SUBSCRIBE", std::string(kCancelChannel)});
      if (!sub.ok()) {
        conn.reset();
        absl::MutexLock lock(&mu_);
        if (!stopping_) maintenance_cv_.WaitWithTimeout(&mu_, absl::Milliseconds(500));
        continue;
      }
      if (!subscribed_.HasBeenNotified()) subscribed_.Notify();
    }
    absl::StatusOr<absl::optional<RedisValue>> msg = conn->ReadPush(absl::Milliseconds(250));
    if (!msg.ok()) {
      conn.reset();
      continue;
    }
    if (!msg->has_value()) continue;
    const RedisValue& m = **msg;
    LogLine(LogLevel::kDebug).Add("msg", "cancel channel message")
        .Add("parts", static_cast<int64_t>(m.elements.size()));
    if (!m.is_array() || m.elements.size() != 3 || m.elements[0].str != "message") continue;
    const std::string& chain_id = m.elements[2].str;
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

void Dispatcher::Handle(const QueueEntry& entry) {
  if (entry.chain_id.empty()) {
    store_.Ack(entry, {}).IgnoreError();
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    // Stopping: leave the entry pending; another replica reclaims it.
    if (stopping_) return;
    if (in_flight_.count(entry.id) > 0) return;  // ours, still running
    if (!HasCapacity(entry.kind)) {
      backlog_.push_back(entry);
      return;
    }
    auto reserved = std::make_shared<InFlight>();
    reserved->entry = entry;
    in_flight_[entry.id] = reserved;
    ++in_flight_by_stage_[entry.kind];
  }
  bool started = false;
  for (int round = 0; round < kMaxCasRounds && !started; ++round) {
    StoredChain stored;
    absl::optional<std::string> input;
    if (NeedsInput(entry.kind)) {
      auto loaded = store_.LoadWithBlob(entry.chain_id, entry.input_blob);
      if (!loaded.ok()) {
        if (loaded.status().code() == absl::StatusCode::kNotFound) {
          store_.Ack(entry, FreshCounters(entry)).IgnoreError();
        }
        break;
      }
      stored = std::move(loaded->first);
      input = std::move(loaded->second);
    } else {
      auto loaded = store_.Load(entry.chain_id);
      if (!loaded.ok()) {
        if (loaded.status().code() == absl::StatusCode::kNotFound) {
          store_.Ack(entry, FreshCounters(entry)).IgnoreError();
        }
        break;
      }
      stored = *std::move(loaded);
    }
    ClaimDecision d =
        scheduler_.OnClaim(stored.chain, entry.step, stored.queue_token == entry.token);
    ApplyExtras extras;
    extras.counters = FreshCounters(entry);
    if (d.action == ClaimDecision::Action::kSkip) {
      LogLine(LogLevel::kDebug).Add("msg", "skip entry").Add("chain", entry.chain_id)
          .Add("step", entry.step).Add("reason", d.reason);
      store_.Ack(entry, extras.counters).IgnoreError();
      break;
    }
    if (d.action == ClaimDecision::Action::kFinish) extras.ack = &entry;
    absl::Status applied = store_.Apply(stored.chain.version(), d.transition, extras);
    if (IsStaleVersion(applied)) continue;
    if (!applied.ok()) {
      LogLine(LogLevel::kWarning).Add("msg", "cannot record step start")
          .Add("chain", entry.chain_id).Add("error", applied.ToString());
      break;
    }
    if (d.action == ClaimDecision::Action::kFinish) break;
    StartCall(entry, d, std::move(input));
    started = true;
  }
  if (!started) Finished(entry.id, entry.kind);
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
  if (entry.kind == conveyor::v1::STAGE_KIND_WEBHOOK) {
    call.report.set_chain(chain.name());
    *call.report.mutable_labels() = chain.spec().labels();
    for (int i = 0; i < step; ++i) *call.report.add_outputs() = chain.steps(i).output();
  }
  std::shared_ptr<InFlight> record;
  {
    absl::MutexLock lock(&mu_);
    record = in_flight_[entry.id];
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

void Dispatcher::Complete(Completion completion) {
  std::shared_ptr<InFlight> call = completion.call;
  StageReply& reply = completion.reply;
  const QueueEntry& entry = call->entry;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && reply.status.code() == absl::StatusCode::kCancelled) {
      // We cancelled it to shut down: leave the entry pending for another
      // replica instead of recording a failure.
      in_flight_.erase(entry.id);
      --in_flight_by_stage_[entry.kind];
      completion_cv_.SignalAll();
      return;
    }
  }
  AttemptResult result;
  result.status = reply.status;
  result.output = reply.output;
  result.worker = reply.worker;
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
  Chain chain = call->chain;
  bool recorded = false;
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
    ApplyExtras extras;
    extras.ack = &entry;
    if (result.status.ok()) extras.output_blob = &reply.output_bytes;
    absl::Status applied = store_.Apply(chain.version(), t, extras);
    if (applied.ok()) {
      recorded = true;
      if (t.effects.retry_at.has_value()) NotifyRetryScheduled(*t.effects.retry_at);
      break;
    }
    if (!IsStaleVersion(applied)) {
      LogLine(LogLevel::kWarning).Add("msg", "cannot record step result; it will be reclaimed")
          .Add("chain", entry.chain_id).Add("step", call->step)
          .Add("error", applied.ToString());
      break;
    }
    absl::StatusOr<StoredChain> fresh = store_.Load(entry.chain_id);
    if (!fresh.ok()) break;
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
      .Add("recorded", recorded ? "true" : "false");
  Finished(entry.id, entry.kind);
}

void Dispatcher::Finished(const std::string& entry_id, StageKind kind) {
  std::vector<QueueEntry> runnable;
  {
    absl::MutexLock lock(&mu_);
    in_flight_.erase(entry_id);
    --in_flight_by_stage_[kind];
    for (auto it = backlog_.begin(); it != backlog_.end();) {
      if (HasCapacity(it->kind) && !stopping_) {
        runnable.push_back(*it);
        it = backlog_.erase(it);
        break;  // one slot freed: one entry
      } else {
        ++it;
      }
    }
    capacity_cv_.SignalAll();
    completion_cv_.SignalAll();
  }
  for (const QueueEntry& e : runnable) Handle(e);
}

}  // namespace conveyor::orchestrator
