// ChainIndex on Redis: sorted sets by create time (all chains, one per state,
// one per label); List reads the most selective one and filters the rest
// (chain_filter.h). List only reads: index entries of chains whose record
// expired are skipped, and removed by PruneExpired (the sweeper's write).
//
// Thread-safe: each call leases a connection from the pool.
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_CHAIN_INDEX_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_CHAIN_INDEX_H_

#include <string>
#include <utility>
#include <vector>

#include "orchestrator/chain_store.h"
#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/redis_store_options.h"

namespace conveyor::orchestrator {

class RedisChainIndex : public virtual ChainIndex {
 public:
  explicit RedisChainIndex(RedisConnectionPool& pool);

  absl::StatusOr<ListPage> List(const ListQuery& query) override;
  absl::StatusOr<PurgeOutcome> Purge(conveyor::v1::State state, absl::Time ended_before,
                                     const std::string& tenant, bool dry_run) override;

 private:
  RedisConnectionPool& pool_;
  RedisScript apply_script_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_CHAIN_INDEX_H_
