// InMemoryChainStore's ReadyQueue: claim, reclaim, heartbeat, acknowledge
// and promote due retries.
#include "tests/testing/in_memory_chain_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_details.h"

namespace conveyor::orchestrator::testing {

using conveyor::v1::Chain;
using conveyor::v1::State;

absl::StatusOr<std::vector<QueueEntry>> InMemoryChainStore::ClaimReady(const std::string& consumer,
                                                                       int count,
                                                                       absl::Duration block) {
  absl::MutexLock lock(&mu_);
  auto any_ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& [priority, entries] : ready_) {
      if (!entries.empty()) return true;
    }
    return false;
  };
  const absl::Time until = absl::Now() + block;
  while (!unavailable_ && !any_ready() && absl::Now() < until) {
    changed_.WaitWithDeadline(&mu_, until);
  }
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  std::vector<QueueEntry> out;
  for (auto& [priority, entries] : ready_) {
    for (int n = 0; n < count && !entries.empty(); ++n) {
      QueueEntry e = std::move(entries.front());
      entries.pop_front();
      pending_[e.key()] = Pending{e, consumer, clock_.Now()};
      out.push_back(std::move(e));
    }
  }
  return out;
}

absl::StatusOr<std::vector<QueueEntry>> InMemoryChainStore::Reclaim(const std::string& consumer,
                                                                    absl::Duration min_idle,
                                                                    int count) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  std::vector<QueueEntry> out;
  const absl::Time now = clock_.Now();
  for (auto& [key, p] : pending_) {
    if (static_cast<int>(out.size()) >= count) break;
    if (now - p.delivered < min_idle) continue;
    p.consumer = consumer;
    p.delivered = now;
    QueueEntry e = p.entry;
    e.reclaimed = true;
    e.counted = true;
    out.push_back(std::move(e));
  }
  return out;
}

absl::Status InMemoryChainStore::Heartbeat(const std::string& consumer,
                                           const std::vector<QueueEntry>& entries) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  for (const QueueEntry& e : entries) {
    auto it = pending_.find(e.key());
    if (it == pending_.end()) continue;
    it->second.consumer = consumer;
    it->second.delivered = clock_.Now();
  }
  return absl::OkStatus();
}

absl::Status InMemoryChainStore::Ack(const QueueEntry& entry,
                                     const std::vector<std::pair<std::string, int>>& counters) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  pending_.erase(entry.key());
  Count(counters);
  return absl::OkStatus();
}

absl::StatusOr<absl::optional<absl::Time>> InMemoryChainStore::PromoteDue(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  auto due = std::stable_partition(delayed_.begin(), delayed_.end(),
                                   [now](const Delayed& d) { return d.due > now; });
  for (auto it = due; it != delayed_.end(); ++it) Enqueue(std::move(it->entry));
  delayed_.erase(due, delayed_.end());
  changed_.SignalAll();
  absl::optional<absl::Time> next;
  for (const Delayed& d : delayed_) {
    if (!next.has_value() || d.due < *next) next = d.due;
  }
  return next;
}

}  // namespace conveyor::orchestrator::testing
