// ReadyQueue on Redis: three streams (high, normal, low) with one consumer
// group; an entry's owner is its consumer, reclaim is XAUTOCLAIM, delayed
// retries wait in a sorted set until promote.lua moves them.
//
// Thread-safe: each call leases a connection from the pool.
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_READY_QUEUE_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_READY_QUEUE_H_

#include <string>
#include <utility>
#include <vector>

#include "orchestrator/chain_store.h"
#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/redis_store_options.h"

namespace conveyor::orchestrator {

class RedisReadyQueue : public virtual ReadyQueue {
 public:
  explicit RedisReadyQueue(RedisConnectionPool& pool);

  // Creates the consumer group on the three ready streams (idempotent).
  absl::Status EnsureGroups();

  absl::StatusOr<std::vector<QueueEntry>> ClaimReady(const std::string& consumer, int count,
                                                     absl::Duration block) override;
  absl::StatusOr<std::vector<QueueEntry>> Reclaim(const std::string& consumer,
                                                  absl::Duration min_idle, int count) override;
  absl::Status Heartbeat(const std::string& consumer,
                         const std::vector<QueueEntry>& entries) override;
  absl::Status Ack(const QueueEntry& entry,
                   const std::vector<std::pair<std::string, int>>& counters) override;
  absl::StatusOr<absl::optional<absl::Time>> PromoteDue(absl::Time now) override;

 private:
  absl::StatusOr<std::vector<QueueEntry>> ParseEntries(const RedisValue& entries,
                                                       const std::string& stream, bool reclaimed);

  RedisConnectionPool& pool_;
  RedisScript promote_script_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_READY_QUEUE_H_
