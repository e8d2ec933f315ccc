#include "orchestrator/chain_follow.h"

#include "orchestrator/chain_api.h"
#include "orchestrator/transition.h"

namespace conveyor::orchestrator {

using conveyor::v1::ChainEvent;

namespace {

// Events read from the store at once, and how long one read waits for new
// ones before the loop looks at `cancelled` and the chain's state again.
constexpr int kEventsPerRead = 100;
constexpr absl::Duration kReadWait = absl::Seconds(1);

bool IsTerminalEvent(ChainEvent::Type type) {
  return type == ChainEvent::CHAIN_SUCCEEDED || type == ChainEvent::CHAIN_FAILED ||
         type == ChainEvent::CHAIN_CANCELLED;
}

absl::Status WatchCancelled() { return absl::CancelledError("watch cancelled"); }

}  // namespace

absl::Status FollowChain(ChainStore& store, const std::string& id, std::string after_id,
                         const std::function<bool(ChainEvent&)>& emit,
                         const std::function<bool()>& cancelled) {
  absl::StatusOr<StoredChain> chain = store.Load(id);
  if (!chain.ok()) return ChainApi::PublicStoreError(chain.status());
  while (!cancelled()) {
    absl::StatusOr<EventBatch> batch = store.Events(id, after_id, kEventsPerRead, kReadWait);
    if (!batch.ok()) return ChainApi::PublicStoreError(batch.status());
    if (batch->events.empty()) {
      // Nothing new: a chain that already ended will not produce more.
      absl::StatusOr<StoredChain> now = store.Load(id);
      if (!now.ok()) return ChainApi::PublicStoreError(now.status());
      if (IsTerminal(now->chain.state())) return absl::OkStatus();
      continue;
    }
    ChainEvent::Type last = ChainEvent::TYPE_UNSPECIFIED;
    for (ChainEvent& event : batch->events) {
      after_id = event.event_id();
      last = event.type();
      if (!emit(event)) return WatchCancelled();
    }
    if (cancelled()) return WatchCancelled();
    // Only the last event of the read decides: a resumed chain goes on.
    if (IsTerminalEvent(last)) return absl::OkStatus();
  }
  return WatchCancelled();
}

}  // namespace conveyor::orchestrator
