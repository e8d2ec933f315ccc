// ChainStore and CancelFeed in memory, for hermetic unit tests of the
// dispatcher and ChainApi: no redis-server, and every wait ends as soon as
// what it waits for happens. It keeps the store contract of chain_store.h
// (compare-and-set on Chain.version, atomic transitions with their side
// effects, idempotency keys, blob accounting and the blob cap, pending
// entries owned by a consumer until acknowledged, reclaim after an idle
// time, delayed retries, event logs, list filters and pages, purge), so a
// test that passes here tests the core, not the fake.
//
// What Redis does that this does not: retention TTLs (terminal chains stay
// until purged) and persistence. SetUnavailable() makes every call fail with
// UNAVAILABLE, as a lost Redis does, and drops every cancel subscription.
//
// Thread-safe.
#ifndef CONVEYOR_TESTS_TESTING_IN_MEMORY_CHAIN_STORE_H_
#define CONVEYOR_TESTS_TESTING_IN_MEMORY_CHAIN_STORE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "orchestrator/cancel_feed.h"
#include "orchestrator/chain_store.h"
#include "orchestrator/clock.h"

namespace conveyor::orchestrator::testing {

struct InMemoryChainStoreOptions {
  // 0 = no cap (Submit's BLOB_STORE_FULL).
  int64_t max_blob_bytes = 0;
  absl::Duration failed_blob_retention = absl::Hours(24);
  TenantQuotas tenant_quotas;
};

class InMemoryChainStore : public ChainStore {
 public:
  explicit InMemoryChainStore(const Clock& clock, InMemoryChainStoreOptions options = {});
  ~InMemoryChainStore() override;

  // While true, every call answers UNAVAILABLE (and subscriptions break).
  void SetUnavailable(bool unavailable);
  // A feed of this store's cancels; each reader needs its own.
  std::unique_ptr<CancelFeed> NewCancelFeed();
  // Entries pending (delivered, not acknowledged), all consumers.
  int PendingEntries() const;

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
                                     const std::string& tenant, bool dry_run) override;
  absl::StatusOr<EventBatch> Events(const std::string& id, const std::string& after_id, int count,
                                    absl::Duration block) override;
  absl::StatusOr<std::vector<int>> MissingBlobs(const std::string& id,
                                                const std::vector<int>& blobs) override;
  absl::StatusOr<int> FreeExpiredBlobs(absl::Time now, int max_chains) override;
  absl::Status ReportReplica(const ReplicaInfo& replica, absl::Duration ttl) override;
  absl::StatusOr<StoreStatus> Status(absl::Time live_after) override;
  absl::StatusOr<absl::Duration> Ping() override;

 private:
  class Feed;
  struct Record {
    StoredChain stored;
    std::map<int, std::string> blobs;
    std::vector<conveyor::v1::ChainEvent> events;  // event_id = position + 1
    absl::optional<absl::Time> blobs_expire;
  };
  struct Pending {
    QueueEntry entry;
    std::string consumer;
    absl::Time delivered;
  };
  struct Delayed {
    absl::Time due;
    QueueEntry entry;
  };

  absl::Status CheckAvailable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyEffects(const Transition& t, const ApplyExtras& extras)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED if a chain of `chain`'s tenant starting (with
  // `incoming` bytes; -1 for a resume, which adds none) passes a quota.
  absl::Status CheckTenantQuotas(const conveyor::v1::Chain& chain, int64_t incoming) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetBlob(Record& record, int index, std::string bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeleteBlob(Record& record, int index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Enqueue(QueueEntry entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Count(const std::vector<std::pair<std::string, int>>& counters)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unsubscribe(Feed* feed);

  const Clock& clock_;
  const InMemoryChainStoreOptions options_;
  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Record> chains_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<std::string, std::string>> idempotency_ ABSL_GUARDED_BY(mu_);
  int64_t blob_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // By tenant: blob bytes held, and chains not in a terminal state.
  std::map<std::string, int64_t> tenant_blob_bytes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> tenant_in_flight_ ABSL_GUARDED_BY(mu_);
  std::map<int, uint64_t> next_entry_ ABSL_GUARDED_BY(mu_);  // by priority
  // Ready entries by priority, highest first.
  std::map<int, std::deque<QueueEntry>, std::greater<int>> ready_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Pending> pending_ ABSL_GUARDED_BY(mu_);  // by entry key()
  std::vector<Delayed> delayed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> stats_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<ReplicaInfo, absl::Time>> replicas_ ABSL_GUARDED_BY(mu_);
  std::set<Feed*> feeds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace conveyor::orchestrator::testing

#endif  // CONVEYOR_TESTS_TESTING_IN_MEMORY_CHAIN_STORE_H_
