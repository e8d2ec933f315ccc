// Frees the image blobs of FAILED and CANCELLED chains once their
// --failed-blob-retention has passed (ChainStore::FreeExpiredBlobs), so that
// failing chains cannot hold Redis memory for the whole retention. Every
// replica runs one; the store makes concurrent sweeps safe.
//
// Thread: one, owned; Stop() (or the destructor) joins it.
#ifndef CONVEYOR_ORCHESTRATOR_BLOB_SWEEPER_H_
#define CONVEYOR_ORCHESTRATOR_BLOB_SWEEPER_H_

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "orchestrator/chain_store.h"
#include "orchestrator/clock.h"

namespace conveyor::orchestrator {

class BlobSweeper {
 public:
  // Sweeps every `interval` (and once at Start()).
  BlobSweeper(ChainStore& store, const Clock& clock, absl::Duration interval)
      : store_(store), clock_(clock), interval_(interval) {}
  ~BlobSweeper() { Stop(); }
  BlobSweeper(const BlobSweeper&) = delete;
  BlobSweeper& operator=(const BlobSweeper&) = delete;

  void Start();
  void Stop();

  // One sweep: frees every due chain's blobs, in bounded batches. Returns the
  // number of chains freed; errors (Redis down) are logged and end the sweep.
  int SweepOnce();

  // The sweep interval for a given retention: often enough that blobs go
  // within a tenth of their retention, at most every minute, at least every
  // 100 ms.
  static absl::Duration IntervalFor(absl::Duration failed_blob_retention);

 private:
  ChainStore& store_;
  const Clock& clock_;
  const absl::Duration interval_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_BLOB_SWEEPER_H_
