// Stage outages in the dispatcher: per-stage flow, waiting steps, and the
// prober that releases them when the stage serves again.
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

int Dispatcher::TotalWaiting() const { return static_cast<int>(waiting_ids_.size()); }

void Dispatcher::ProberLoop() {
  while (true) {
    std::vector<StageKind> in_outage;
    std::vector<QueueEntry> release;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      const absl::Time now = clock_.Now();
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
        flow.window = std::min(dispatch::kRecoveryWindow, options_.max_in_flight);
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
  w.expires = dispatch::WaitExpiry(chain, entry.step, scheduler_.options());
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
}  // namespace conveyor::orchestrator
