// Following one chain's events, with no gRPC: the store in, events out
// through a callback. WatchChain (chain_watch.h) and the dashboard's chain
// stream (dashboard/dashboard_endpoints.h) both run it.
#ifndef CONVEYOR_ORCHESTRATOR_CHAIN_FOLLOW_H_
#define CONVEYOR_ORCHESTRATOR_CHAIN_FOLLOW_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "conveyor/v1/chain.pb.h"
#include "orchestrator/chain_store.h"

namespace conveyor::orchestrator {

// Follows chain `id` from after the event `after_id` ("" = its start): the
// history, then live events as they are written. `emit` gets each event in
// order and returns false when the reader is gone; `cancelled` is polled
// between reads of the store. Returns
//   OK once a terminal event was emitted as the last of a read (a chain that
//   RetryChain resumed goes on), or when nothing is new and the chain has
//   already ended (watched after its last event);
//   CANCELLED "watch cancelled" when `emit` returned false or `cancelled()`;
//   a store error as ChainApi::PublicStoreError shows it (NOT_FOUND for an
//   unknown chain, before any event).
absl::Status FollowChain(ChainStore& store, const std::string& id, std::string after_id,
                         const std::function<bool(conveyor::v1::ChainEvent&)>& emit,
                         const std::function<bool()>& cancelled);

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_CHAIN_FOLLOW_H_
