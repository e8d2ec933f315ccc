// Sentinel discovery, private to conveyor_redis: which address is the primary
// of a sentinel-managed endpoint (redis_connection.h, "Sentinel").
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_REDIS_PRIMARY_RESOLVER_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_REDIS_PRIMARY_RESOLVER_H_

#include <cstddef>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "orchestrator/redis/redis_connection.h"

namespace conveyor::orchestrator {

// One command on a short-lived connection to `address` (no AUTH, no SELECT),
// `timeout` for connecting and for the reply. The reply as sent, an error
// reply in place; UNAVAILABLE with hiredis's text if it cannot connect or
// read. Defined in redis_connection.cc, next to the rest of the hiredis code.
absl::StatusOr<RedisValue> RedisCommandOnce(const RedisAddress& address, absl::Duration timeout,
                                            absl::Span<const std::string> argv);

// Shared by the connections of one pool, so the sentinels are asked about
// once per kPrimaryRecheck per process, not per connection. Thread-safe.
class RedisPrimaryResolver {
 public:
  // A sentinel is asked with a short timeout: the asking thread's command
  // waits for it, and the next sentinel may answer at once.
  RedisPrimaryResolver(RedisEndpoint endpoint, absl::Duration connect_timeout);

  // The primary the sentinels named, asked again when older than
  // kPrimaryRecheck or after Invalidate(). If no sentinel answers, the last
  // known address (the primary may well be fine while sentinels restart);
  // UNAVAILABLE naming every sentinel's failure if none ever answered.
  absl::StatusOr<RedisAddress> Current();

  // After connection loss or a READONLY reply: ask again on the next call.
  void Invalidate();

 private:
  static constexpr absl::Duration kMinAskInterval = absl::Milliseconds(50);

  absl::StatusOr<RedisAddress> LastLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks each sentinel in turn, starting with the one that answered last.
  absl::StatusOr<RedisAddress> Ask();
  absl::StatusOr<RedisAddress> AskOne(const RedisAddress& sentinel);

  const RedisEndpoint endpoint_;
  const absl::Duration ask_timeout_;
  absl::Mutex ask_mu_;  // held by the one thread asking the sentinels
  absl::Mutex mu_;
  bool known_ ABSL_GUARDED_BY(mu_) = false;
  RedisAddress address_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_) =
      absl::UnavailableError("redis-sentinel: not asked yet");
  bool stale_ ABSL_GUARDED_BY(mu_) = true;
  absl::Time asked_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  size_t first_sentinel_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_REDIS_PRIMARY_RESOLVER_H_
