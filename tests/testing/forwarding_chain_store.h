// A ChainStore that hands every call to another one: a test derives from it
// and overrides the calls it wants to watch or interleave with.
#ifndef CONVEYOR_TESTS_TESTING_FORWARDING_CHAIN_STORE_H_
#define CONVEYOR_TESTS_TESTING_FORWARDING_CHAIN_STORE_H_

#include <string>
#include <utility>
#include <vector>

#include "orchestrator/chain_store.h"

namespace conveyor::orchestrator::testing {

class ForwardingChainStore : public ChainStore {
 public:
  explicit ForwardingChainStore(ChainStore& inner) : inner_(inner) {}

  absl::StatusOr<ListPage> List(const ListQuery& query) override { return inner_.List(query); }
  absl::StatusOr<SubmitOutcome> Submit(const Transition& t, const std::string& hash,
                                       const std::string* source) override {
    return inner_.Submit(t, hash, source);
  }
  absl::StatusOr<StoredChain> Load(const std::string& id) override { return inner_.Load(id); }
  absl::StatusOr<std::vector<absl::optional<conveyor::v1::State>>> States(
      const std::vector<std::string>& ids) override {
    return inner_.States(ids);
  }
  absl::StatusOr<std::pair<StoredChain, absl::optional<std::string>>> LoadWithBlob(
      const std::string& id, int blob) override {
    return inner_.LoadWithBlob(id, blob);
  }
  absl::Status Apply(int64_t expected, const Transition& t, const ApplyExtras& extras) override {
    return inner_.Apply(expected, t, extras);
  }
  absl::StatusOr<std::vector<QueueEntry>> ClaimReady(const std::string& consumer, int count,
                                                     absl::Duration block) override {
    return inner_.ClaimReady(consumer, count, block);
  }
  absl::StatusOr<std::vector<QueueEntry>> Reclaim(const std::string& consumer,
                                                  absl::Duration min_idle, int count) override {
    return inner_.Reclaim(consumer, min_idle, count);
  }
  absl::Status Heartbeat(const std::string& consumer,
                         const std::vector<QueueEntry>& entries) override {
    return inner_.Heartbeat(consumer, entries);
  }
  absl::Status Ack(const QueueEntry& entry,
                   const std::vector<std::pair<std::string, int>>& counters) override {
    return inner_.Ack(entry, counters);
  }
  absl::StatusOr<absl::optional<absl::Time>> PromoteDue(absl::Time now) override {
    return inner_.PromoteDue(now);
  }
  absl::StatusOr<PurgeOutcome> Purge(conveyor::v1::State state, absl::Time ended_before,
                                     const std::string& tenant, bool dry_run) override {
    return inner_.Purge(state, ended_before, tenant, dry_run);
  }
  absl::StatusOr<EventBatch> Events(const std::string& id, const std::string& after_id, int count,
                                    absl::Duration block) override {
    return inner_.Events(id, after_id, count, block);
  }
  absl::StatusOr<std::vector<int>> MissingBlobs(const std::string& id,
                                                const std::vector<int>& blobs) override {
    return inner_.MissingBlobs(id, blobs);
  }
  absl::StatusOr<int> FreeExpiredBlobs(absl::Time now, int max_chains) override {
    return inner_.FreeExpiredBlobs(now, max_chains);
  }
  absl::Status ReportReplica(const ReplicaInfo& replica, absl::Duration ttl) override {
    return inner_.ReportReplica(replica, ttl);
  }
  absl::StatusOr<StoreStatus> Status(absl::Time live_after) override {
    return inner_.Status(live_after);
  }
  absl::StatusOr<absl::Duration> Ping() override { return inner_.Ping(); }

 protected:
  ChainStore& inner_;
};

}  // namespace conveyor::orchestrator::testing

#endif  // CONVEYOR_TESTS_TESTING_FORWARDING_CHAIN_STORE_H_
