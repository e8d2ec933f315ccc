#include "orchestrator/blob_sweeper.h"

#include <algorithm>

#include "common/log.h"

namespace conveyor::orchestrator {
namespace {

constexpr int kBatch = 100;
constexpr int kMaxBatchesPerSweep = 100;

}  // namespace

absl::Duration BlobSweeper::IntervalFor(absl::Duration failed_blob_retention) {
  return std::clamp(failed_blob_retention / 10, absl::Milliseconds(100), absl::Minutes(1));
}

int BlobSweeper::SweepOnce() {
  int total = 0;
  // Bounded: a backlog larger than this waits for the next sweep.
  for (int batch = 0; batch < kMaxBatchesPerSweep; ++batch) {
    absl::StatusOr<int> freed = store_.FreeExpiredBlobs(clock_.Now(), kBatch);
    if (!freed.ok()) {
      LogLine(LogLevel::kWarning)
          .Add("msg", "cannot free expired blobs")
          .Add("error", freed.status().ToString());
      break;
    }
    total += *freed;
    if (*freed < kBatch) break;
  }
  if (total > 0) {
    LogLine(LogLevel::kInfo).Add("msg", "freed images of failed chains").Add("chains", total);
  }
  return total;
}

void BlobSweeper::Start() {
  thread_ = std::thread([this] {
    do {
      SweepOnce();
    } while (!stop_.WaitForNotificationWithTimeout(interval_));
  });
}

void BlobSweeper::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

}  // namespace conveyor::orchestrator
