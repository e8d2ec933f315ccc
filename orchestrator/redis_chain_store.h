// ChainStore on Redis (schema: redis/redis_keys.h), one class per part of
// the seam: chain records (redis_chain_records.h), the ready queue
// (redis_ready_queue.h), the index (redis_chain_index.h) and the replica
// registry (redis_replica_registry.h). Every change of a chain is one EVALSHA
// of redis/scripts/apply.lua: version check plus all its effects
// (redis_transition_script.h).
//
// Thread-safe: each call leases a connection from the pool.
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_CHAIN_STORE_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_CHAIN_STORE_H_

#include "orchestrator/chain_store.h"
#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/redis_chain_index.h"
#include "orchestrator/redis_chain_records.h"
#include "orchestrator/redis_ready_queue.h"
#include "orchestrator/redis_replica_registry.h"
#include "orchestrator/redis_store_options.h"

namespace conveyor::orchestrator {

class RedisChainStore final : public ChainStore,
                              public RedisChainRecords,
                              public RedisReadyQueue,
                              public RedisChainIndex,
                              public RedisReplicaRegistry {
 public:
  RedisChainStore(RedisConnectionPool& pool, RedisChainStoreOptions options)
      : RedisChainRecords(pool, options),
        RedisReadyQueue(pool),
        RedisChainIndex(pool),
        RedisReplicaRegistry(pool) {}
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_CHAIN_STORE_H_
