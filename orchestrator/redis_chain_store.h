// ChainStore on Redis (schema: redis/redis_keys.h). Every transition is one
// EVALSHA of redis/scripts/apply.lua: version check plus all its effects.
//
// Thread-safe: each call leases a connection from the pool.
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_CHAIN_STORE_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_CHAIN_STORE_H_

#include <string>
#include <vector>

#include "orchestrator/chain_store.h"
#include "orchestrator/redis/redis_connection.h"

namespace conveyor::orchestrator {

struct RedisChainStoreOptions {
  // TTL of finished chains (and of idempotency keys).
  absl::Duration retention = absl::Hours(24 * 7);
  // How long the image blobs of a FAILED or CANCELLED chain are kept (for
  // RetryChain) before FreeExpiredBlobs frees them; capped at `retention`.
  absl::Duration failed_blob_retention = absl::Hours(24);
  // Submit refuses new chains while the stored blob bytes reach this; 0 = no
  // cap. Admitted chains still store their step outputs, so the bytes held
  // can pass the cap by what the running chains produce.
  int64_t max_blob_bytes = int64_t{512} << 20;
};

class RedisChainStore : public ChainStore {
 public:
  RedisChainStore(RedisConnectionPool& pool, RedisChainStoreOptions options);

  // Creates the consumer group on the three ready streams (idempotent).
  absl::Status EnsureGroups();

  absl::StatusOr<SubmitOutcome> Submit(const Transition& transition, const std::string& spec_hash,
                                       const std::string* source_bytes) override;
  absl::StatusOr<StoredChain> Load(const std::string& id) override;
  absl::StatusOr<std::vector<absl::optional<conveyor::v1::State>>> States(
      const std::vector<std::string>& ids) override;
  absl::StatusOr<std::pair<StoredChain, absl::optional<std::string>>> LoadWithBlob(
      const std::string& id, int blob) override;
  absl::Status Apply(int64_t expected_version, const Transition& transition,
                     const ApplyExtras& extras) override;
  absl::StatusOr<std::vector<QueueEntry>> ClaimReady(const std::string& consumer, int count,
                                                     absl::Duration block) override;
  absl::StatusOr<std::vector<QueueEntry>> Reclaim(const std::string& consumer,
                                                  absl::Duration min_idle, int count) override;
  absl::Status Heartbeat(const std::string& consumer,
                         const std::vector<QueueEntry>& entries) override;
  absl::Status Ack(const QueueEntry& entry,
                   const std::vector<std::pair<std::string, int>>& counters) override;
  absl::StatusOr<absl::optional<absl::Time>> PromoteDue(absl::Time now) override;
  absl::StatusOr<ListPage> List(const ListQuery& query) override;
  absl::StatusOr<PurgeOutcome> Purge(conveyor::v1::State state, absl::Time ended_before,
                                     bool dry_run) override;
  absl::StatusOr<EventBatch> Events(const std::string& id, const std::string& after_id, int count,
                                    absl::Duration block) override;
  absl::StatusOr<std::vector<int>> MissingBlobs(const std::string& id,
                                                const std::vector<int>& blobs) override;
  absl::StatusOr<int> FreeExpiredBlobs(absl::Time now, int max_chains) override;
  absl::Status ReportReplica(const ReplicaInfo& replica, absl::Duration ttl) override;
  absl::StatusOr<StoreStatus> Status(absl::Time live_after) override;
  absl::StatusOr<absl::Duration> Ping() override;

 private:
  absl::StatusOr<std::vector<QueueEntry>> ParseEntries(const RedisValue& entries,
                                                       const std::string& stream, bool reclaimed);

  RedisConnectionPool& pool_;
  RedisChainStoreOptions options_;
  RedisScript apply_script_;
  RedisScript promote_script_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_CHAIN_STORE_H_
