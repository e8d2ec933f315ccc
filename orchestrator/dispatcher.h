// Drives chains: takes ready steps from the shared streams, records each
// attempt, calls the worker and records the outcome. One per replica.
//
// Threads (all owned and joined by Stop()):
//   reader       blocking XREADGROUP over the high, normal and low streams;
//                stops reading while every in-flight slot is taken.
//   maintenance  every lease/4 heartbeats this replica's entries (in flight,
//                backlog, waiting) and reports the replica; every lease/4
//                reclaims entries whose lease expired (their replica died);
//                moves due delayed retries into the ready streams; every
//                second reconciles in-flight calls with their chains' state
//                (a cancel whose pub/sub message was lost still lands).
//   completer    records the outcome of each worker call (one Lua call); a
//                result Redis could not take is recorded again when it can.
//   canceller    reads the CancelFeed; cancels this replica's in-flight call
//                of a cancelled chain.
//   prober       while a stage is in an outage, checks its health every
//                probe interval and releases its waiting steps when it serves;
//                re-handles entries whose handling Redis interrupted.
// Nothing polls in a busy loop: idle threads block in Redis or on a CondVar.
//
// Stage outages: a call that never reached a serving worker (StageReply::
// not_delivered) spends no attempt; its step is recorded waiting and its
// entry kept here (heartbeated, so no other replica takes it), and the stage
// counts as in an outage: its next steps wait too, without calling it. When
// its health check answers SERVING the waiting steps are released in
// priority order through a window that starts small and grows by one per
// delivered call (and halves on WORKER_BUSY), so a recovering worker is not
// flooded past its concurrency cap.
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
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "orchestrator/chain_store.h"
#include "orchestrator/cancel_feed.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/stage_client.h"

namespace conveyor::orchestrator {

struct DispatcherOptions {
  std::string replica_name;
  // This replica's gRPC address (for GetSystemStatus).
  std::string address;
  // Per-stage cap on in-flight calls from this replica.
  int max_in_flight = 64;
  // A replica that stopped heartbeating for this long has its steps taken
  // over; heartbeats and reclaim checks run every lease/4.
  absl::Duration lease_timeout = absl::Seconds(2);
  int64_t max_intermediate_bytes = 64 << 20;
  // How often the health of a stage in an outage is checked.
  absl::Duration probe_interval = absl::Milliseconds(250);
  // Waiting steps this replica holds at most; beyond it stops reading new
  // steps until some are released (bounds memory and heartbeat size).
  int max_waiting = 10000;
};

class Dispatcher {
 public:
  // `cancels` is read by the canceller thread only. Every time the
  // dispatcher keeps or waits for comes from `clock` (waits are timeouts of
  // its differences, so a test clock must advance for them to end).
  Dispatcher(ChainStore& store, CancelFeed& cancels, StageClient& stages,
             const Scheduler& scheduler, const Clock& clock, DispatcherOptions options);
  ~Dispatcher();

  void Start();
  // Stops reading, waits up to `grace` for in-flight calls, cancels the rest
  // (their entries stay pending and are reclaimed by another replica), joins.
  void Stop(absl::Duration grace);

  // A retry was scheduled at `due` (wakes the promoter early if needed).
  void NotifyRetryScheduled(absl::Time due);

  std::map<std::string, int64_t> InFlightByStage() const;
  // Steps held back by stage outages, by stage name.
  std::map<std::string, int64_t> WaitingByStage() const;

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
    // Not before this time (a retry of a result Redis could not take).
    absl::Time due = absl::InfinitePast();
  };
  // A step waiting for its stage to serve again.
  struct Waiting {
    QueueEntry entry;
    // When the chain's deadline or the stage's max outage is over: then the
    // entry is released anyway and its claim fails the step.
    absl::Time expires = absl::InfiniteFuture();
    uint64_t sequence = 0;
  };
  // What this replica knows of one stage's ability to take calls.
  struct StageFlow {
    // Not OK while the stage is in an outage (the reason).
    absl::Status outage;
    // Calls it may have in flight now (<= max_in_flight).
    int window = 0;
    // Health is checked at most once per probe interval, also when released
    // steps find the stage down again at once.
    absl::Time next_probe = absl::InfinitePast();
    std::vector<Waiting> waiting;
  };

  void ReaderLoop();
  void MaintenanceLoop();
  void CompleterLoop();
  void CancelLoop();
  void ProberLoop();

  // Handles one entry (fresh or reclaimed): skip, finish or start it. An
  // entry of a stage at capacity waits in the backlog.
  void Handle(const QueueEntry& entry);
  // Takes a free in-flight slot for `entry`.
  void Reserve(const QueueEntry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Loads the chain of a reserved entry and starts, waits, finishes or skips
  // its step. True if a call started (the slot stays taken until it ends).
  bool Claim(const QueueEntry& entry);
  void StartCall(const QueueEntry& entry, const ClaimDecision& decision,
                 absl::optional<std::string> input);
  // Records a call's outcome. False if Redis could not take it (try again).
  bool Complete(Completion& completion);
  // Frees an entry's slot and hands it to the backlog's next entry.
  void Finished(std::string entry_key, conveyor::v1::StageKind kind);
  // Keeps `entry` until its stage serves again (see StageFlow).
  void Park(QueueEntry entry, const conveyor::v1::Chain& chain, const absl::Status& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks the stage as in an outage (if it is not yet) for `reason`.
  void EnterOutage(StageFlow& flow, conveyor::v1::StageKind kind, const absl::Status& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Handles `entry` again after a short delay (Redis could not be reached).
  void Defer(const QueueEntry& entry);
  // Cancels calls, and drops waiting steps, of chains that ended meanwhile.
  void Reconcile();
  // Every entry this replica holds (in flight, backlog, waiting, deferred).
  std::vector<QueueEntry> HeldEntries() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  StageFlow& Flow(conveyor::v1::StageKind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasCapacity(conveyor::v1::StageKind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int TotalInFlight() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int TotalWaiting() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ChainStore& store_;
  CancelFeed& cancels_;
  StageClient& stages_;
  const Scheduler& scheduler_;
  const Clock& clock_;
  const DispatcherOptions options_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Set by Stop() once the grace period is over: every call still in flight,
  // or starting after that, is cancelled.
  bool cancelling_all_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::shared_ptr<InFlight>> in_flight_ ABSL_GUARDED_BY(mu_);  // by entry key()
  std::map<conveyor::v1::StageKind, int> in_flight_by_stage_ ABSL_GUARDED_BY(mu_);
  std::deque<QueueEntry> backlog_ ABSL_GUARDED_BY(mu_);
  std::deque<Completion> completions_ ABSL_GUARDED_BY(mu_);
  std::map<conveyor::v1::StageKind, StageFlow> flows_ ABSL_GUARDED_BY(mu_);
  // Keys of the waiting entries (in flows_), so a re-read one is not doubled.
  std::set<std::string> waiting_ids_ ABSL_GUARDED_BY(mu_);
  uint64_t waiting_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::pair<absl::Time, QueueEntry>> deferred_ ABSL_GUARDED_BY(mu_);
  absl::Time next_due_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Set when the cancel subscription (re)connects: reconcile at once.
  bool reconcile_now_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar capacity_cv_;
  absl::CondVar maintenance_cv_;
  absl::CondVar completion_cv_;
  absl::CondVar prober_cv_;

  // Notified once the cancel subscription is first established.
  absl::Notification subscribed_;
  std::vector<std::thread> threads_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_DISPATCHER_H_
