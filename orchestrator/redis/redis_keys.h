// Redis key names: this header comment is the schema.
//
// Per chain (hash tag = chain id, so one chain lives in one cluster slot):
//   cv:{<id>}:meta     hash  pb=<Chain, serialized>  version=<int64, = Chain.version>
//                            state=<State number>     qtoken=<version that last queued
//                            a step; a ready/delayed entry whose token differs is stale>
//                            create_ms=<int64>        end_ms=<int64, terminal only>
//   cv:{<id>}:events   stream, one entry per ChainEvent: e=<ChainEvent, serialized>
//   cv:{<id>}:blob:<i> string, image bytes: blob:0 = the inline source, blob:<i+1> =
//                      the output of step i (download/resize/filter). Deleted when the
//                      chain succeeds; for a FAILED/CANCELLED chain, deleted when its
//                      cv:{q}:blob_expiry time comes (TTL retention + that time as a
//                      backstop). Written and deleted only through apply.lua's BLOBSET /
//                      BLOBDEL, which keep cv:{q}:blob_bytes exact.
//
// Shared (hash tag {q}):
//   cv:{q}:ready:high|normal|low  streams of ready steps, consumer group "dispatch";
//                      entry fields c=<chain id> s=<step> t=<qtoken> k=<StageKind>
//                      b=<blob index of the step's input image>
//   cv:{q}:delayed     zset score=due ms, member "<id>|<step>|<qtoken>|<priority>|<kind>|<b>"
//   cv:{q}:idx:all     zset score=create ms, member chain id (every chain)
//   cv:{q}:idx:state:<STATE>     same, chains currently in STATE
//   cv:{q}:idx:label:<k>=<v>     same, chains carrying that label
//   cv:{q}:idx:tenant:<t>        same, chains of tenant t
//   cv:{q}:idem:<t>:<key>  string "<chain id>|<spec hash>", EX = retention: idempotency
//                      keys are per tenant, so one tenant's key never finds another's chain
//   cv:{q}:blob_bytes  string int64: bytes in every cv:{*}:blob:* key
//   cv:{q}:tenant:<t>:blob_bytes  string int64: the same for tenant t's chains (its
//                      stored-bytes quota); BLOBSET / BLOBDEL keep both exact
//   cv:{q}:tenant:<t>:in_flight   string int64: tenant t's chains not in a terminal
//                      state (+1 on submit and resume, -1 on reaching a terminal state)
//   cv:{q}:blob_expiry zset score=ms when the blobs of a FAILED/CANCELLED chain are freed,
//                      member chain id; removed when the chain is retried or purged
//   cv:{q}:stats       hash "<stage>.<counter>" -> int64 (queued, succeeded, failed, retried)
//   cv:{q}:replicas    zset score=last heartbeat ms, member replica name
//   cv:{q}:replica:<name>  hash address, in_flight.<stage> ..., EX = 3 x lease
//   channel cv:cancel  pub/sub, message = chain id (cancel its in-flight call)
//
// ListChains' stage, error-reason and end-time filters (and CancelChains /
// RetryChains, which page through ListChains) have no index of their own: List
// reads the state, label or all index above and applies them to each chain it
// reads (orchestrator/chain_filter.h), at most kMaxListScan entries per call.
// Why not an index per stage / reason: docs/orchestrator.md, "Bulk recovery".
//
// Index entries are not removed when a retained chain expires: List (which
// only reads) skips entries whose meta is gone, PurgeChains removes them.
//
// Cluster note: a transition touches one chain's keys and some {q} keys in one
// script, so on Redis Cluster both hash tags must be on one shard (e.g. a
// single-shard deployment, or a proxy that pins them). See docs/orchestrator.md.
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_REDIS_KEYS_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_REDIS_KEYS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "conveyor/v1/chain.pb.h"
#include "common/stage_registry.h"

namespace conveyor::orchestrator {

inline constexpr absl::string_view kDispatchGroup = "dispatch";
inline constexpr absl::string_view kCancelChannel = "cv:cancel";
inline constexpr absl::string_view kDelayedKey = "cv:{q}:delayed";
inline constexpr absl::string_view kAllIndexKey = "cv:{q}:idx:all";
inline constexpr absl::string_view kStatsKey = "cv:{q}:stats";
inline constexpr absl::string_view kReplicasKey = "cv:{q}:replicas";
inline constexpr absl::string_view kBlobBytesKey = "cv:{q}:blob_bytes";
inline constexpr absl::string_view kBlobExpiryKey = "cv:{q}:blob_expiry";

std::string ChainMetaKey(absl::string_view id);
std::string ChainEventsKey(absl::string_view id);
std::string ChainBlobKey(absl::string_view id, int index);
// Priority LOW/NORMAL/HIGH (UNSPECIFIED = NORMAL).
std::string ReadyStreamKey(conveyor::v1::Priority priority);
std::string StateIndexKey(conveyor::v1::State state);
std::string LabelIndexKey(absl::string_view key, absl::string_view value);
std::string TenantIndexKey(absl::string_view tenant);
std::string IdempotencyKey(absl::string_view tenant, absl::string_view key);
std::string TenantBlobBytesKey(absl::string_view tenant);
std::string TenantInFlightKey(absl::string_view tenant);
std::string ReplicaKey(absl::string_view name);


}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_REDIS_KEYS_H_
