// ChainRecords on Redis: the chain hash, its event stream and its blobs
// (schema: redis/redis_keys.h); every write is one apply.lua call.
//
// Thread-safe: each call leases a connection from the pool.
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_CHAIN_RECORDS_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_CHAIN_RECORDS_H_

#include <string>
#include <utility>
#include <vector>

#include "orchestrator/chain_store.h"
#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/redis_store_options.h"

namespace conveyor::orchestrator {

class RedisChainRecords : public virtual ChainRecords {
 public:
  RedisChainRecords(RedisConnectionPool& pool, RedisChainStoreOptions options);

  absl::StatusOr<SubmitOutcome> Submit(const Transition& transition, const std::string& spec_hash,
                                       const std::string* source_bytes) override;
  absl::StatusOr<StoredChain> Load(const std::string& id) override;
  absl::StatusOr<std::vector<absl::optional<conveyor::v1::State>>> States(
      const std::vector<std::string>& ids) override;
  absl::StatusOr<std::pair<StoredChain, absl::optional<std::string>>> LoadWithBlob(
      const std::string& id, int blob) override;
  absl::Status Apply(int64_t expected_version, const Transition& transition,
                     const ApplyExtras& extras) override;
  // Cursors are the events' stream ids ("<ms>-<seq>").
  absl::StatusOr<EventBatch> Events(const std::string& id, const std::string& after_id, int count,
                                    absl::Duration block) override;
  absl::StatusOr<std::vector<int>> MissingBlobs(const std::string& id,
                                                const std::vector<int>& blobs) override;
  absl::StatusOr<int> FreeExpiredBlobs(absl::Time now, int max_chains) override;

 private:
  RedisConnectionPool& pool_;
  RedisChainStoreOptions options_;
  RedisScript apply_script_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_CHAIN_RECORDS_H_
