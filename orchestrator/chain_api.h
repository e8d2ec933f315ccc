// The Orchestrator's request handling, apart from gRPC: the service
// (orchestrator_service.cc) is a thin adapter over this. Blocking (Redis);
// call it from a worker thread. Thread-safe. Defined by job: chain_api.cc
// (submit, get, list, cancel, retry, purge), chain_api_bulk.cc (CancelChains,
// RetryChains), chain_api_retry.cc (RetryChain's plan), chain_api_status.cc
// (GetSystemStatus).
//
// Every call names its Caller (the gRPC edge checked its scope): a chain
// records the tenant and principal that submitted it; a chain of another
// tenant is NOT_FOUND in the same words as an unknown one; lists, purges and
// bulk actions cover the caller's tenant only (every tenant for a caller of
// kAllTenants); idempotency keys are per tenant. Submit, cancel, retry and
// purge write an audit log line, and the events they cause carry the actor.
//
// Every request field is checked against its documented limit before it is
// used (chain_validator.h). Errors from the store keep their code, but a
// Redis error reply never reaches the caller verbatim (store_errors.h).
#ifndef CONVEYOR_ORCHESTRATOR_CHAIN_API_H_
#define CONVEYOR_ORCHESTRATOR_CHAIN_API_H_

#include <string>

#include "absl/status/statusor.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "orchestrator/caller.h"
#include "orchestrator/chain_store.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/stage_client.h"
#include "orchestrator/store_errors.h"

namespace conveyor::orchestrator {

// Bulk actions: the most chains one call examines, and the page it reads
// the index in. A call that reaches the cap says `truncated`.
inline constexpr int kMaxBulkChains = 10000;
inline constexpr int kBulkPageSize = 200;
// Index entries one bulk call reads at most (over all its pages), so a filter
// that matches little in a big index stays a few seconds.
inline constexpr int64_t kMaxBulkScan = 100000;
// Names (and failures) a bulk response carries at most.
inline constexpr int kMaxBulkNames = 100;

struct ChainApiOptions {
  int64_t max_intermediate_bytes = 64 << 20;
  absl::Duration lease_timeout = absl::Seconds(10);
  int max_in_flight = 64;
  absl::Duration health_timeout = absl::Milliseconds(500);
  // ListChains pages end before their serialized size passes this.
  int64_t max_list_response_bytes = (int64_t{4} << 20) * 15 / 16;
  // Reported by SystemStatus (the store enforces them).
  int64_t max_blob_bytes = int64_t{512} << 20;
  absl::Duration failed_blob_retention = absl::Hours(24);
};

// Chain `id` as `caller` may see it: NOT_FOUND, in the store's words for an
// unknown chain, if it belongs to another tenant; store errors as
// PublicStoreError shows them.
absl::StatusOr<StoredChain> LoadForCaller(ChainRecords& store, const Caller& caller,
                                          const std::string& id);
// The audit trail's log line: who (`caller`) did `action` to `subject`.
void AuditLog(absl::string_view action, const Caller& caller, absl::string_view subject);
// Marks every event of `t` as caused by `caller` (ChainEvent.actor).
void MarkActor(const Caller& caller, Transition& t);

class ChainApi {
 public:
  ChainApi(ChainStore& store, const Scheduler& scheduler, StageClient& stages, const Clock& clock,
           ChainApiOptions options)
      : store_(store), scheduler_(scheduler), stages_(stages), clock_(clock), options_(options) {}

  // Validates, stores, queues step 0. `request.source().data()` is the inline
  // source (may be empty). INVALID_ARGUMENT, ALREADY_EXISTS, UNAVAILABLE.
  absl::StatusOr<conveyor::v1::Chain> Submit(const Caller& caller,
                                             const conveyor::v1::SubmitChainRequest& request);
  absl::StatusOr<conveyor::v1::Chain> Get(const Caller& caller, const std::string& name);
  absl::StatusOr<conveyor::v1::ListChainsResponse> List(
      const Caller& caller, const conveyor::v1::ListChainsRequest& request);
  absl::StatusOr<conveyor::v1::Chain> Cancel(const Caller& caller, const std::string& name);
  absl::StatusOr<conveyor::v1::Chain> Retry(const Caller& caller, const std::string& name);
  // Cancel / Retry of every chain matching `request.filter`, newest first,
  // through the same per-chain compare-and-set as Cancel / Retry. Bounded:
  // at most kMaxBulkChains matching chains per call, the index paged through
  // kBulkPageSize at a time. Each chain is re-checked against the filter at
  // the version the action is applied to, so a chain that changed since it
  // was listed is skipped rather than acted on. INVALID_ARGUMENT for an empty
  // or bad filter or max_chains; UNAVAILABLE if the store is lost part-way
  // (chains changed until then stay changed; calling again goes on).
  absl::StatusOr<conveyor::v1::BulkChainsResponse> CancelMany(
      const Caller& caller, const conveyor::v1::CancelChainsRequest& request);
  absl::StatusOr<conveyor::v1::BulkChainsResponse> RetryMany(
      const Caller& caller, const conveyor::v1::RetryChainsRequest& request);
  absl::StatusOr<conveyor::v1::PurgeChainsResponse> Purge(
      const Caller& caller, const conveyor::v1::PurgeChainsRequest& request);
  absl::StatusOr<conveyor::v1::SystemStatus> SystemStatus(const Caller& caller);
  // What `caller` may see of a status with every detail: queue counters,
  // replicas and store usage are for admin callers; everyone else sees
  // whether each stage and Redis serve. The one rule SystemStatus and the
  // dashboard's samples (read once as admin, shown to many) both apply.
  static conveyor::v1::SystemStatus RedactSystemStatus(const conveyor::v1::SystemStatus& status,
                                                       const Caller& caller);

  // "chains/<32 lower-case hex digits>" or the bare id -> the id (what
  // Submit names chains); INVALID_ARGUMENT otherwise.
  static absl::StatusOr<std::string> ParseChainName(const std::string& name);
  // WatchChainRequest: the chain id, after checking after_event_id (empty, or
  // a stream id as ChainEvent.event_id carries it). INVALID_ARGUMENT naming
  // the field otherwise, so a bad id never reaches Redis.
  static absl::StatusOr<std::string> ParseWatchRequest(
      const conveyor::v1::WatchChainRequest& request);
  // store_errors.h's PublicStoreError.
  static absl::Status PublicStoreError(const absl::Status& status) {
    return orchestrator::PublicStoreError(status);
  }

 private:
  // What an action writes: the transition and what the store checks or does
  // with it (e.g. the blobs a retry needs, re-checked in the same script).
  struct PlannedAction {
    Transition transition;
    ApplyExtras extras;
  };
  // Scheduler::Cancel as a plan.
  absl::StatusOr<PlannedAction> PlanCancel(const conveyor::v1::Chain& chain) const;
  // Scheduler::Retry, resuming earlier than the first unfinished step where
  // an input it needs was freed (--failed-blob-retention); FAILED_PRECONDITION
  // SOURCE_FREED if the inline source itself is gone.
  absl::StatusOr<PlannedAction> PlanRetry(const conveyor::v1::Chain& chain) const;
  // PlanCancel or PlanRetry.
  using ChainAction = absl::StatusOr<PlannedAction> (ChainApi::*)(const conveyor::v1::Chain&) const;
  struct ActionOutcome {
    conveyor::v1::Chain chain;  // after the action (or as found, if unchanged)
    bool changed = false;
    // False if `must_match` no longer held for the stored chain.
    bool matched = true;
  };
  // Loads chain `id`, computes `action` and applies it by compare-and-set,
  // reloading (up to 5 times) when another writer got there first. With
  // `must_match`, a stored chain that no longer matches it is left alone
  // (matched = false). With `dry_run`, computes but applies nothing. The
  // action's own errors (FAILED_PRECONDITION) are returned as they are.
  // Another tenant's chain is NOT_FOUND; the events the action writes carry
  // `caller` as their actor.
  absl::StatusOr<ActionOutcome> ApplyAction(const Caller& caller, const std::string& id,
                                            ChainAction action, const ListQuery* must_match,
                                            bool dry_run);
  // ApplyToEachMatching, and one audit line for what it changed.
  absl::StatusOr<conveyor::v1::BulkChainsResponse> ApplyToMatching(
      const Caller& caller, const conveyor::v1::ChainFilter& filter, bool dry_run,
      int32_t max_chains, ChainAction action, absl::string_view audit_action);
  absl::StatusOr<conveyor::v1::BulkChainsResponse> ApplyToEachMatching(
      const Caller& caller, const conveyor::v1::ChainFilter& filter, bool dry_run,
      int32_t max_chains, ChainAction action);

  ChainStore& store_;
  const Scheduler& scheduler_;
  StageClient& stages_;
  const Clock& clock_;
  const ChainApiOptions options_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_CHAIN_API_H_
