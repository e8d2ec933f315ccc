// The storage seam: everything the orchestrator persists, behind four
// interfaces shaped by what the core does with it (ChainRecords: transition
// and load chains; ReadyQueue: claim, reclaim and acknowledge steps;
// ChainIndex: list and purge; ReplicaRegistry: replicas and counters), and
// ChainStore, all four. RedisChainStore is the production implementation (all
// state in Redis, so any number of replicas share it);
// tests/testing/in_memory_chain_store.h keeps the same contract in memory.
// Nothing here names a Redis concept: entry and event ids are opaque.
//
// Contract for every method: UNAVAILABLE when the store cannot be reached
// (nothing was half-written: each write is one atomic script), NOT_FOUND for
// a chain that does not exist (or expired). Apply() is a compare-and-set on
// Chain.version: a stale writer gets ABORTED with error reason
// "STALE_VERSION" (IsStaleVersion) and changes nothing.
//
// Image blobs are accounted: the store tracks the bytes it holds in blobs, and
// Submit refuses a chain while they reach the cap (RESOURCE_EXHAUSTED, reason
// BLOB_STORE_FULL). The blobs of a FAILED or CANCELLED chain are freed after
// the failed-blob retention (FreeExpiredBlobs), its record stays.
//
// Thread-safety: implementations are thread-safe.
#ifndef CONVEYOR_ORCHESTRATOR_CHAIN_STORE_H_
#define CONVEYOR_ORCHESTRATOR_CHAIN_STORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "conveyor/v1/chain.pb.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "orchestrator/transition.h"

namespace conveyor::orchestrator {

// ABORTED with reason STALE_VERSION.
absl::Status StaleVersionError(int64_t expected, const std::string& actual);
bool IsStaleVersion(const absl::Status& status);
// The other refusals every store gives in the same words: ALREADY_EXISTS
// (CHAIN_EXISTS), FAILED_PRECONDITION (BLOB_GONE), RESOURCE_EXHAUSTED
// (BLOB_STORE_FULL, with the bytes held). `what` names the operation.
absl::Status ChainExistsError(absl::string_view what);
absl::Status BlobGoneError(absl::string_view what);
absl::Status BlobStoreFullError(absl::string_view blob_bytes);

// Per-tenant quotas; 0 = none. A store checks them atomically with the write
// that would pass them: Submit (both) and the Apply() that resumes a chain
// (chains in flight). Step outputs of admitted chains still count, so a
// tenant's bytes can pass the quota by what its running chains produce.
struct TenantQuotas {
  // Chains of the tenant not in a terminal state.
  int64_t max_chains_in_flight = 0;
  // Bytes of images the store holds for the tenant's chains.
  int64_t max_stored_bytes = 0;
};
// RESOURCE_EXHAUSTED, reason TENANT_QUOTA_EXCEEDED, naming the quota
// ("chains_in_flight" or "stored_bytes"), the tenant, its limit and what the
// tenant holds.
absl::Status TenantQuotaError(absl::string_view quota, absl::string_view tenant, int64_t limit,
                              absl::string_view held);


struct StoredChain {
  conveyor::v1::Chain chain;
  // Chain.version at the time its current step was queued; entries carrying
  // another token are leftovers.
  int64_t queue_token = 0;
};

// One ready step, owned by this replica until acknowledged.
struct QueueEntry {
  // Where the store keeps it and its id there: opaque to the core, which
  // only passes them back (Heartbeat, Ack) and tells entries apart by key().
  std::string stream;
  std::string id;
  std::string chain_id;
  int step = -1;
  int64_t token = 0;
  conveyor::v1::StageKind kind = conveyor::v1::STAGE_KIND_UNSPECIFIED;
  // Blob holding the step's input image (see InputBlobIndex).
  int input_blob = 0;
  conveyor::v1::Priority priority = conveyor::v1::PRIORITY_NORMAL;
  // Taken over from another replica (XAUTOCLAIM), not read fresh.
  bool reclaimed = false;
  // The stage's "queued" counter no longer counts this entry (it was
  // decremented when the step first started); true for reclaimed entries.
  bool counted = false;

  // Unique among all entries: ids are unique only within a stream (Redis's
  // high, normal and low streams hand out the same ids in the same
  // millisecond).
  std::string key() const { return stream + "/" + id; }
};

// What Apply() does besides the transition's own effects.
struct ApplyExtras {
  // Acknowledge and delete this entry in the same script.
  const QueueEntry* ack = nullptr;
  // Bytes for transition.effects.output_blob.
  const std::string* output_blob = nullptr;
  // Extra counters (e.g. "<stage>.queued" -1 for a fresh claim).
  std::vector<std::pair<std::string, int>> counters;
  // Blobs that must still be stored: if one is gone, nothing is applied and
  // Apply() is FAILED_PRECONDITION with reason BLOB_GONE (RetryChain checks
  // the inputs it resumes from this way, atomically with the resume).
  std::vector<int> required_blobs;
};

// FAILED_PRECONDITION from Apply() when ApplyExtras::required_blobs failed.
bool IsBlobGone(const absl::Status& status);

struct SubmitOutcome {
  conveyor::v1::Chain chain;
  // True if the idempotency key matched an existing chain with the same spec.
  bool existing = false;
};

// Index entries one List call reads at most. A filter that matches few of
// them returns a short page (possibly empty) with a next_page_token where
// the scan stopped, so one call stays bounded (AIP-158 allows short pages).
inline constexpr int64_t kMaxListScan = 20000;

struct ListQuery {
  // Only chains of this tenant (ChainTenant); empty = every tenant.
  std::string tenant;
  int page_size = 50;
  std::string page_token;
  conveyor::v1::State state = conveyor::v1::STATE_UNSPECIFIED;
  std::map<std::string, std::string> labels;
  absl::optional<absl::Time> created_after;   // inclusive
  absl::optional<absl::Time> created_before;  // exclusive
  // Stop adding chains before the page's serialized size passes this (0 =
  // no limit); the page then ends early with a next_page_token. At least one
  // chain is returned.
  int64_t max_page_bytes = 0;
  // Filters without an index of their own (chain_filter.h says what they
  // match): applied to each chain read from the index chosen above.
  conveyor::v1::StageKind stage = conveyor::v1::STAGE_KIND_UNSPECIFIED;
  std::string error_reason;                // case-insensitive; empty = any
  absl::optional<absl::Time> ended_after;   // inclusive
  absl::optional<absl::Time> ended_before;  // exclusive
  // Index entries this call may read (tests set it low); at most kMaxListScan.
  int64_t max_scan = kMaxListScan;
};

struct ListPage {
  std::vector<conveyor::v1::Chain> chains;
  std::string next_page_token;
  // Index entries this call read (<= kMaxListScan).
  int64_t scanned = 0;
};

struct PurgeOutcome {
  int64_t count = 0;
  std::vector<std::string> sample_names;  // up to 100
};

struct StageCounters {
  int64_t queued = 0, succeeded = 0, failed = 0, retried = 0, in_flight = 0;
  // Steps replicas hold back while the stage is in an outage.
  int64_t waiting = 0;
};

struct ReplicaInfo {
  std::string name;
  std::string address;
  absl::Time heartbeat;
  std::map<std::string, int64_t> in_flight;  // by stage name
  std::map<std::string, int64_t> waiting;    // by stage name, see StageCounters
};

struct StoreStatus {
  std::map<std::string, StageCounters> stages;  // by stage name
  std::vector<ReplicaInfo> replicas;
  std::map<std::string, int64_t> chains_by_state;
  // Bytes held in image blobs (inline sources and step outputs).
  int64_t blob_bytes = 0;
  // Redis INFO memory: used_memory and maxmemory (0 = no limit); -1 if
  // Redis did not say.
  int64_t redis_used_memory = -1;
  int64_t redis_max_memory = -1;
};

struct EventBatch {
  std::vector<conveyor::v1::ChainEvent> events;  // event_id filled
};

// The chains themselves: records, their image blobs and their event logs.
class ChainRecords {
 public:
  virtual ~ChainRecords() = default;

  // Stores a new chain (transition from Scheduler::Submit) with its inline
  // source bytes, atomically. With an idempotency key: the same key and
  // `spec_hash` returns the existing chain (existing = true); another hash is
  // ALREADY_EXISTS. RESOURCE_EXHAUSTED (reason BLOB_STORE_FULL) while the
  // stored blob bytes are at the cap or the source would pass it; ALREADY_EXISTS
  // with reason CHAIN_EXISTS if the chain id is taken (the caller picks a new one).
  virtual absl::StatusOr<SubmitOutcome> Submit(const Transition& transition,
                                               const std::string& spec_hash,
                                               const std::string* source_bytes) = 0;

  virtual absl::StatusOr<StoredChain> Load(const std::string& id) = 0;
  // The recorded state of each chain in `ids`, index-aligned; nullopt for a
  // chain that does not exist (any more). One round trip.
  virtual absl::StatusOr<std::vector<absl::optional<conveyor::v1::State>>> States(
      const std::vector<std::string>& ids) = 0;
  // The chain and blob `blob` (nullopt if absent), in one round trip.
  virtual absl::StatusOr<std::pair<StoredChain, absl::optional<std::string>>> LoadWithBlob(
      const std::string& id, int blob) = 0;

  // Compare-and-set: applies `transition` if the stored version is
  // `expected_version`.
  virtual absl::Status Apply(int64_t expected_version, const Transition& transition,
                             const ApplyExtras& extras) = 0;

  // Events after the opaque cursor `after_id` (an event_id this store gave
  // out; "" or "0" = from the start), waiting up to `block` for new ones when
  // there are none (zero = do not wait). INVALID_ARGUMENT for a cursor this
  // store cannot have given out.
  virtual absl::StatusOr<EventBatch> Events(const std::string& id, const std::string& after_id,
                                            int count, absl::Duration block) = 0;

  // Which of `blobs` (blob indexes of chain `id`) are no longer stored.
  virtual absl::StatusOr<std::vector<int>> MissingBlobs(const std::string& id,
                                                        const std::vector<int>& blobs) = 0;
  // Frees the blobs of FAILED/CANCELLED chains whose failed-blob retention
  // passed by `now`, at most `max_chains` chains. Returns how many chains'
  // blobs it freed. Safe to run on every replica at once.
  virtual absl::StatusOr<int> FreeExpiredBlobs(absl::Time now, int max_chains) = 0;
};

// The steps ready to run: each entry is owned by the replica (consumer) that
// took it until acknowledged; an owner that stops heartbeating loses it.
class ReadyQueue {
 public:
  virtual ~ReadyQueue() = default;

  // Blocking read of new ready entries for `consumer` (high, normal, low; up
  // to `count` of each). Empty after `block` with nothing ready.
  virtual absl::StatusOr<std::vector<QueueEntry>> ClaimReady(const std::string& consumer,
                                                             int count, absl::Duration block) = 0;
  // Takes over entries idle longer than `min_idle` (their replica died).
  virtual absl::StatusOr<std::vector<QueueEntry>> Reclaim(const std::string& consumer,
                                                          absl::Duration min_idle, int count) = 0;
  // Resets the idle time of entries this replica still works on.
  virtual absl::Status Heartbeat(const std::string& consumer,
                                 const std::vector<QueueEntry>& entries) = 0;
  // Acknowledges and deletes a stale entry.
  virtual absl::Status Ack(const QueueEntry& entry,
                           const std::vector<std::pair<std::string, int>>& counters) = 0;
  // Moves delayed entries due by `now` into their ready streams. Returns the
  // next due time, if any remains.
  virtual absl::StatusOr<absl::optional<absl::Time>> PromoteDue(absl::Time now) = 0;
};

// Finding chains: filtered, paged lists, and purge of finished ones.
class ChainIndex {
 public:
  virtual ~ChainIndex() = default;

  // Reads only.
  virtual absl::StatusOr<ListPage> List(const ListQuery& query) = 0;
  // Deletes chains in terminal `state` (UNSPECIFIED: any) that ended before
  // `ended_before`, of `tenant` only (empty: every tenant).
  virtual absl::StatusOr<PurgeOutcome> Purge(conveyor::v1::State state, absl::Time ended_before,
                                             const std::string& tenant, bool dry_run) = 0;
};

// The replicas, and the counters GetSystemStatus shows.
class ReplicaRegistry {
 public:
  virtual ~ReplicaRegistry() = default;

  virtual absl::Status ReportReplica(const ReplicaInfo& replica, absl::Duration ttl) = 0;
  // Reads only.
  virtual absl::StatusOr<StoreStatus> Status(absl::Time live_after) = 0;
  // A round trip to the store.
  virtual absl::StatusOr<absl::Duration> Ping() = 0;
};

// The whole seam. The parts are virtual bases so that an implementation can
// be put together from one class per part (RedisChainStore is).
class ChainStore : public virtual ChainRecords,
                   public virtual ReadyQueue,
                   public virtual ChainIndex,
                   public virtual ReplicaRegistry {};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_CHAIN_STORE_H_
