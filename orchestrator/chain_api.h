// The Orchestrator's request handling, apart from gRPC: the service
// (orchestrator_service.cc) is a thin adapter over this. Blocking (Redis);
// call it from a worker thread. Thread-safe.
//
// Every request field is checked against its documented limit before it is
// used (chain_validator.h). Errors from the store keep their code, but a
// Redis error reply never reaches the caller verbatim: it becomes a precise
// status (OOM -> RESOURCE_EXHAUSTED STORE_OUT_OF_MEMORY, LOADING/BUSY/
// READONLY/... -> UNAVAILABLE, anything else INTERNAL naming only the Redis
// error class) and the raw text is logged once, here.
#ifndef CONVEYOR_ORCHESTRATOR_CHAIN_API_H_
#define CONVEYOR_ORCHESTRATOR_CHAIN_API_H_

#include <string>

#include "absl/status/statusor.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "orchestrator/chain_store.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/stage_client.h"

namespace conveyor::orchestrator {

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

class ChainApi {
 public:
  ChainApi(ChainStore& store, const Scheduler& scheduler, StageClient& stages, const Clock& clock,
           ChainApiOptions options)
      : store_(store), scheduler_(scheduler), stages_(stages), clock_(clock), options_(options) {}

  // Validates, stores, queues step 0. `request.source().data()` is the inline
  // source (may be empty). INVALID_ARGUMENT, ALREADY_EXISTS, UNAVAILABLE.
  absl::StatusOr<conveyor::v1::Chain> Submit(const conveyor::v1::SubmitChainRequest& request);
  absl::StatusOr<conveyor::v1::Chain> Get(const std::string& name);
  absl::StatusOr<conveyor::v1::ListChainsResponse> List(
      const conveyor::v1::ListChainsRequest& request);
  absl::StatusOr<conveyor::v1::Chain> Cancel(const std::string& name);
  absl::StatusOr<conveyor::v1::Chain> Retry(const std::string& name);
  absl::StatusOr<conveyor::v1::PurgeChainsResponse> Purge(
      const conveyor::v1::PurgeChainsRequest& request);
  absl::StatusOr<conveyor::v1::SystemStatus> SystemStatus();

  // "chains/<32 hex>" or a bare id -> the id; INVALID_ARGUMENT otherwise.
  static absl::StatusOr<std::string> ParseChainName(const std::string& name);
  // WatchChainRequest: the chain id, after checking after_event_id (empty, or
  // a stream id as ChainEvent.event_id carries it). INVALID_ARGUMENT naming
  // the field otherwise, so a bad id never reaches Redis.
  static absl::StatusOr<std::string> ParseWatchRequest(
      const conveyor::v1::WatchChainRequest& request);
  // A store error as callers may see it (see the header comment); OK and
  // statuses not from a Redis error reply pass unchanged.
  static absl::Status PublicStoreError(const absl::Status& status);

 private:
  ChainStore& store_;
  const Scheduler& scheduler_;
  StageClient& stages_;
  const Clock& clock_;
  const ChainApiOptions options_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_CHAIN_API_H_
