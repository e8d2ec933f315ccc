// Following a chain to its end over WatchChain, through outages of the
// replica serving the watch or of Redis (a restart loading its data, a
// Sentinel failover): on UNAVAILABLE it reconnects, resuming after the last
// event it saw, backing off from 100 ms doubling to 2 s, and gives up (the
// watch's status then) once it has been unavailable for kMaxWatchOutage on
// end, or at the caller's deadline. Thread-safe as the Session is: the
// `batch` workers follow their chains at once.
#ifndef CONVEYOR_CLIENT_FOLLOW_H_
#define CONVEYOR_CLIENT_FOLLOW_H_

#include <functional>
#include <string>

#include "absl/time/time.h"
#include "client/session.h"
#include "conveyor/v1/chain.pb.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "google/rpc/status.pb.h"

namespace conveyor::client {

inline constexpr absl::Duration kWatchBackoffInitial = absl::Milliseconds(100);
inline constexpr absl::Duration kWatchBackoffMax = absl::Seconds(2);
inline constexpr absl::Duration kMaxWatchOutage = absl::Minutes(2);

struct FollowResult {
  grpc::Status status;                                          // of the watch itself
  conveyor::v1::State state = conveyor::v1::STATE_UNSPECIFIED;  // the chain's, at the end
  google::rpc::Status error;                                    // the chain's error, if any
};

// Reads the chain, retrying UNAVAILABLE with the watch's backoff, bounded by
// kMaxWatchOutage and `deadline`: reading the chain around a watch meets the
// same outages as the watch itself.
grpc::Status GetChainRetrying(Session& session, const std::string& name, absl::Time deadline,
                              conveyor::v1::Chain* chain);

// Streams the chain's events into `on_event` until the server ends the
// stream (the chain is terminal), then reads the chain for its final state
// and error. Stops with DEADLINE_EXCEEDED after `max_wait` (may be infinite).
FollowResult Follow(Session& session, const std::string& name, absl::Duration max_wait,
                    const std::function<void(const conveyor::v1::ChainEvent&)>& on_event);

// `submit --wait`, `retry --wait`: follows `chain` to its end, rendering
// progress (nothing with --json), then prints the final chain (its results
// or error; the chain's JSON with --json). Returns the exit code: kExitOk
// if it SUCCEEDED, kExitChainFailed if not, kExitRpcError if following failed.
int FollowAndReport(Session& session, const GlobalOptions& global, const conveyor::v1::Chain& chain,
                    absl::Duration max_wait);

// The stage of each step of `spec`, for naming steps in progress lines.
std::vector<conveyor::v1::StageKind> KindsOf(const conveyor::v1::ChainSpec& spec);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_FOLLOW_H_
