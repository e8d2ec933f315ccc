// Drives chains: takes ready steps from the shared streams, records each
// attempt, calls the worker and records the outcome. One per replica.
//
// Threads (all owned and joined by Stop()):
//   reader       blocking XREADGROUP over the high, normal and low streams;
//                stops reading while every in-flight slot is taken.
//   maintenance  every lease/3 heartbeats this replica's in-flight entries and
//                reports the replica; every lease/2 reclaims entries whose
//                lease expired (their replica died); moves due delayed retries
//                into the ready streams (sleeping until the earliest due time,
//                at most 250 ms, woken early when this replica schedules one).
//   completer    records the outcome of each worker call (one Lua call).
//   canceller    SUBSCRIBE cv:cancel; cancels this replica's in-flight call of
//                a cancelled chain.
// Nothing polls in a busy loop: idle threads block in Redis or on a CondVar.
//
// Delivery is at-least-once: a step whose replica dies mid-call runs again
// (as a new attempt) on another replica after the lease timeout; a step whose
// success was recorded never runs again.
#ifndef CONVEYOR_ORCHESTRATOR_DISPATCHER_H_
#define CONVEYOR_ORCHESTRATOR_DISPATCHER_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "orchestrator/chain_store.h"
#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/stage_client.h"

namespace conveyor::orchestrator {

struct DispatcherOptions {
  std::string replica_name;
  // This replica's gRPC address (for GetSystemStatus).
  std::string address;
  // Per-stage cap on in-flight calls from this replica.
  int max_in_flight = 64;
  absl::Duration lease_timeout = absl::Seconds(10);
  int64_t max_intermediate_bytes = 64 << 20;
};

class Dispatcher {
 public:
  // `pool` is used for the cancel subscription (a dedicated connection).
  Dispatcher(ChainStore& store, RedisConnectionPool& pool, StageClient& stages,
             const Scheduler& scheduler, DispatcherOptions options);
  ~Dispatcher();

  void Start();
  // Stops reading, waits up to `grace` for in-flight calls, cancels the rest
  // (their entries stay pending and are reclaimed by another replica), joins.
  void Stop(absl::Duration grace);

  // A retry was scheduled at `due` (wakes the promoter early if needed).
  void NotifyRetryScheduled(absl::Time due);

  std::map<std::string, int64_t> InFlightByStage() const;

 private:
  struct InFlight {
    QueueEntry entry;
    conveyor::v1::Chain chain;  // as recorded when the attempt started
    int step = 0;
    int attempt = 0;
    absl::Time started;
    std::shared_ptr<StageCallHandle> handle;
    // A cancel arrived before the call started: cancel it once it has.
    bool cancel_requested = false;
  };
  struct Completion {
    std::shared_ptr<InFlight> call;
    StageReply reply;
  };

  void ReaderLoop();
  void MaintenanceLoop();
  void CompleterLoop();
  void CancelLoop();

  // Handles one entry (fresh or reclaimed): skip, finish or start it. An
  // entry of a stage at capacity waits in the backlog.
  void Handle(const QueueEntry& entry);
  void StartCall(const QueueEntry& entry, const ClaimDecision& decision,
                 absl::optional<std::string> input);
  void Complete(Completion completion);
  void Finished(const std::string& entry_id, conveyor::v1::StageKind kind);
  bool HasCapacity(conveyor::v1::StageKind kind) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int TotalInFlight() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ChainStore& store_;
  RedisConnectionPool& pool_;
  StageClient& stages_;
  const Scheduler& scheduler_;
  const DispatcherOptions options_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Set by Stop() once the grace period is over: every call still in flight,
  // or starting after that, is cancelled.
  bool cancelling_all_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::shared_ptr<InFlight>> in_flight_ ABSL_GUARDED_BY(mu_);  // by entry id
  std::map<conveyor::v1::StageKind, int> in_flight_by_stage_ ABSL_GUARDED_BY(mu_);
  std::deque<QueueEntry> backlog_ ABSL_GUARDED_BY(mu_);
  std::deque<Completion> completions_ ABSL_GUARDED_BY(mu_);
  absl::Time next_due_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::CondVar capacity_cv_;
  absl::CondVar maintenance_cv_;
  absl::CondVar completion_cv_;

  // Notified once the cancel subscription is first established.
  absl::Notification subscribed_;
  std::vector<std::thread> threads_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_DISPATCHER_H_
