// The dispatcher's maintenance and canceller threads: heartbeats, reclaim,
// delayed retries, reconcile, and the cancel feed.
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

void Dispatcher::MaintenanceLoop() {
  const absl::Duration period = options_.lease_timeout / 4;
  absl::Time next_heartbeat = absl::InfinitePast();
  absl::Time next_reclaim = clock_.Now() + period;
  absl::Time next_reconcile = clock_.Now() + dispatch::kReconcileInterval;
  // Since when this replica's heartbeats have been going through. After
  // Redis was away every lease looks expired, live replicas' too: reclaim
  // only once every replica has had a lease to heartbeat again.
  absl::Time heartbeats_ok_since = absl::InfiniteFuture();
  while (true) {
    const absl::Time now = clock_.Now();
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
      next_reconcile = now + dispatch::kReconcileInterval;
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
      next_due_ = now + dispatch::kPromoteRecheck;
      if (next.ok() && next->has_value()) next_due_ = std::min(next_due_, **next);
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (reconcile_now_) continue;
    const absl::Time wake = std::min({next_heartbeat, next_reclaim, next_due_, next_reconcile});
    if (wake > clock_.Now()) maintenance_cv_.WaitWithTimeout(&mu_, wake - clock_.Now());
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
  for (const QueueEntry& e : dropped) store_.Ack(e, dispatch::FreshCounters(e)).IgnoreError();
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
}  // namespace conveyor::orchestrator
