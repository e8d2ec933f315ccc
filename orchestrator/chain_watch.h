// WatchChain: following one chain's events, apart from the service adapter.
// FollowChain (chain_follow.h) is the loop; ChainWatcher runs it for each
// WatchChain stream on a thread of its own, writing the events as the stream
// accepts them.
#ifndef CONVEYOR_ORCHESTRATOR_CHAIN_WATCH_H_
#define CONVEYOR_ORCHESTRATOR_CHAIN_WATCH_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "orchestrator/caller.h"
#include "orchestrator/chain_follow.h"
#include "orchestrator/chain_store.h"

namespace conveyor::orchestrator {

// Admits WatchChain streams, at most `max_watches` at a time (more get
// RESOURCE_EXHAUSTED at once), each followed by FollowChain on its own
// thread, joined when the stream is done. Thread-safe. `store` must outlive
// every stream started.
class ChainWatcher {
 public:
  ChainWatcher(ChainStore& store, int max_watches) : store_(store), max_watches_(max_watches) {}

  // The reactor for one WatchChain call by `caller`: its error if the
  // caller could not be identified, INVALID_ARGUMENT for a bad request
  // (ChainApi::ParseWatchRequest), RESOURCE_EXHAUSTED over max_watches.
  grpc::ServerWriteReactor<conveyor::v1::ChainEvent>* Start(
      const absl::StatusOr<Caller>& caller, const conveyor::v1::WatchChainRequest& request);

 private:
  ChainStore& store_;
  const int max_watches_;
  std::atomic<int> active_{0};
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_CHAIN_WATCH_H_
