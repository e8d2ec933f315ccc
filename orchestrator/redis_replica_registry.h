// ReplicaRegistry on Redis: a sorted set of replicas by last heartbeat and a
// hash per replica (with a TTL), the stats hash, and INFO memory for status.
//
// Thread-safe: each call leases a connection from the pool.
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_REPLICA_REGISTRY_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_REPLICA_REGISTRY_H_

#include <string>
#include <utility>
#include <vector>

#include "orchestrator/chain_store.h"
#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/redis_store_options.h"

namespace conveyor::orchestrator {

class RedisReplicaRegistry : public virtual ReplicaRegistry {
 public:
  explicit RedisReplicaRegistry(RedisConnectionPool& pool);

  absl::Status ReportReplica(const ReplicaInfo& replica, absl::Duration ttl) override;
  absl::StatusOr<StoreStatus> Status(absl::Time live_after) override;
  absl::StatusOr<absl::Duration> Ping() override;

 private:
  RedisConnectionPool& pool_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_REPLICA_REGISTRY_H_
