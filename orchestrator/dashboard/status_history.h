// Stage and replica health over time for the dashboard: a bounded ring of
// GetSystemStatus samples kept in this replica's memory (lost on restart,
// not shared between replicas: each replica samples the same Redis, so
// every one draws the same curves once it has run a while). Thread-safe.
#ifndef CONVEYOR_ORCHESTRATOR_DASHBOARD_STATUS_HISTORY_H_
#define CONVEYOR_ORCHESTRATOR_DASHBOARD_STATUS_HISTORY_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "orchestrator/caller.h"

namespace conveyor::orchestrator::dashboard {

struct StatusSample {
  absl::Time time;
  conveyor::v1::SystemStatus status;
};

class StatusHistory {
 public:
  // Keeps the newest `capacity` samples (at least 1).
  explicit StatusHistory(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  void Add(absl::Time time, conveyor::v1::SystemStatus status);
  // Oldest first.
  std::vector<StatusSample> Samples() const;
  // Samples added so far (not capped): a stream sends again when it moves.
  int64_t added() const;
  // The samples added after the first `seen` ones that are still kept
  // (oldest first), and added() as of then, read together.
  std::vector<StatusSample> SamplesAfter(int64_t seen, int64_t* added) const;

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<StatusSample> samples_ ABSL_GUARDED_BY(mu_);
  int64_t added_ ABSL_GUARDED_BY(mu_) = 0;
};

// {"current": <the newest SystemStatus>, "history": [{"time": RFC 3339,
//  "stages": {"resize": {"health": "SERVING", "queued": n, "inFlight": n,
//  "waiting": n}}, "replicas": n}, ...]}: each sample redacted for
// `caller` (non-admins get health only); "current" is null before the
// first sample.
std::string StatusHistoryJson(const std::vector<StatusSample>& samples, const Caller& caller);

}  // namespace conveyor::orchestrator::dashboard

#endif  // CONVEYOR_ORCHESTRATOR_DASHBOARD_STATUS_HISTORY_H_
