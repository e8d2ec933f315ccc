// A chain transition: the next Chain and the side effects a ChainStore
// applies atomically with it, and the vocabulary those effects are stated in
// (terminal states, blob indexes, chain ids). The Scheduler computes
// transitions; a ChainStore applies them. Plain data and pure functions: no
// gRPC, no Redis, so a store depends on this header and not on the scheduler.
//
// Every transition increments Chain.version by one; the store applies it only
// if the stored version is still the one it was computed from
// (compare-and-set), so a stale writer can never overwrite.
#ifndef CONVEYOR_ORCHESTRATOR_TRANSITION_H_
#define CONVEYOR_ORCHESTRATOR_TRANSITION_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "conveyor/v1/chain.pb.h"
// A chain's times are proto Timestamps; stores convert them with these.
#include "orchestrator/clock.h"

namespace conveyor::orchestrator {

// What the store does along with writing the new chain.
struct SideEffects {
  // Queue this step (>= 0): at once, or at `retry_at` if set.
  int enqueue_step = -1;
  absl::optional<absl::Time> retry_at;
  // Store the attempt's output bytes as blob `output_blob` (input of the
  // next image-consuming step).
  int output_blob = -1;
  // The chain succeeded: delete every blob.
  bool delete_blobs = false;
  // The chain became terminal: every key of it expires after the retention.
  bool expire = false;
  // The chain resumed: drop the TTLs.
  bool persist = false;
  // Tell every replica to cancel the chain's in-flight call.
  bool publish_cancel = false;
  // Events to append (event_id is assigned by the store).
  std::vector<conveyor::v1::ChainEvent> events;
  // Counters: ("resize.succeeded", 1) ...
  std::vector<std::pair<std::string, int>> counters;
};

struct Transition {
  conveyor::v1::Chain chain;
  SideEffects effects;
  // False when nothing changes (e.g. cancelling a FAILED chain).
  bool changed = true;
  // The chain's state before (STATE_UNSPECIFIED for a new chain): the store
  // moves the chain between state indexes.
  conveyor::v1::State previous_state = conveyor::v1::STATE_UNSPECIFIED;
};

bool IsTerminal(conveyor::v1::State state);
// First step that has not SUCCEEDED; steps_size() if all have.
int FirstUnfinishedStep(const conveyor::v1::Chain& chain);
// Percent (0..100, rounded down) of the chain's steps that SUCCEEDED.
int ProgressPercent(const conveyor::v1::Chain& chain);
// Index of the blob holding the input image of `step`: 0 (the inline source)
// or k+1 for the nearest earlier download/resize/filter step k.
int InputBlobIndex(const conveyor::v1::ChainSpec& spec, int step);
// True for steps whose output is image bytes (download, resize, filter).
bool ProducesImage(const conveyor::v1::Step& step);
// Blob indexes a chain can have (for deletion).
std::vector<int> BlobIndexes(const conveyor::v1::Chain& chain);
// "chains/<id>" -> "<id>"; bare ids pass through.
std::string ChainIdFromName(const std::string& name);
// The tenant a chain belongs to: Chain.tenant, or kDefaultTenant (caller.h)
// for a chain recorded before tenants.
std::string ChainTenant(const conveyor::v1::Chain& chain);

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_TRANSITION_H_
