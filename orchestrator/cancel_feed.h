// The seam for cancel fan-out: how a replica hears that a chain it may be
// running was cancelled. The cancel itself is part of the transition
// (SideEffects::publish_cancel, which the store applies atomically with the
// CANCELLED state); a feed delivers it to every replica. Delivery is best
// effort: a replica that misses one (it was not subscribed) learns of it
// from its reconcile pass, which compares what it runs with the stored
// states (Dispatcher::Reconcile), so a feed says when it (re)subscribed.
//
// Not thread-safe: one reader (the dispatcher's canceller thread).
#ifndef CONVEYOR_ORCHESTRATOR_CANCEL_FEED_H_
#define CONVEYOR_ORCHESTRATOR_CANCEL_FEED_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"

namespace conveyor::orchestrator {

struct CancelNotice {
  enum class Kind {
    // The feed (re)subscribed: notices sent before now may have been missed.
    kSubscribed,
    // Chain `chain_id` was cancelled.
    kCancelled,
  };
  Kind kind = Kind::kCancelled;
  std::string chain_id;
};

class CancelFeed {
 public:
  virtual ~CancelFeed() = default;
  // Waits up to `wait` for the next notice; nullopt if none came. Subscribes
  // first when not subscribed (and answers kSubscribed once it is).
  // UNAVAILABLE when the store cannot be reached or the subscription broke;
  // the next call subscribes again.
  virtual absl::StatusOr<absl::optional<CancelNotice>> Next(absl::Duration wait) = 0;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_CANCEL_FEED_H_
