#include "orchestrator/redis/redis_primary_resolver.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"

namespace conveyor::orchestrator {

RedisPrimaryResolver::RedisPrimaryResolver(RedisEndpoint endpoint,
                                           absl::Duration connect_timeout)
    : endpoint_(std::move(endpoint)),
      ask_timeout_(std::min(connect_timeout, absl::Milliseconds(250))) {}

absl::StatusOr<RedisAddress> RedisPrimaryResolver::Current() {
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    const bool fresh = !stale_ && now - asked_at_ < kPrimaryRecheck;
    // Many connections failing at once ask once, not each.
    const bool too_soon = now - asked_at_ < kMinAskInterval;
    if (fresh || too_soon) return LastLocked();
  }
  if (!ask_mu_.TryLock()) {
    // Another thread is asking: a known address will do meanwhile.
    {
      absl::MutexLock lock(&mu_);
      if (known_) return address_;
    }
    absl::MutexLock wait(&ask_mu_);
    absl::MutexLock lock(&mu_);
    return LastLocked();
  }
  absl::StatusOr<RedisAddress> asked = Ask();
  absl::MutexLock lock(&mu_);
  asked_at_ = absl::Now();
  if (asked.ok()) {
    if (!known_ || address_ != *asked) {
      LogLine(known_ ? LogLevel::kWarning : LogLevel::kInfo)
          .Add("msg", known_ ? "redis primary moved" : "redis primary found")
          .Add("master", endpoint_.master_name)
          .Add("from", known_ ? FormatRedisAddress(address_) : std::string("-"))
          .Add("to", FormatRedisAddress(*asked));
    }
    address_ = *asked;
    known_ = true;
    stale_ = false;
  } else {
    last_error_ = asked.status();
  }
  ask_mu_.Unlock();
  return LastLocked();
}

void RedisPrimaryResolver::Invalidate() {
  absl::MutexLock lock(&mu_);
  stale_ = true;
}

absl::StatusOr<RedisAddress> RedisPrimaryResolver::LastLocked() {
  if (known_) return address_;
  return last_error_;
}

absl::StatusOr<RedisAddress> RedisPrimaryResolver::Ask() {
  size_t first;
  {
    absl::MutexLock lock(&mu_);
    first = first_sentinel_;
  }
  std::vector<std::string> failures;
  const size_t n = endpoint_.sentinels.size();
  for (size_t i = 0; i < n; ++i) {
    const size_t index = (first + i) % n;
    const RedisAddress& sentinel = endpoint_.sentinels[index];
    absl::StatusOr<RedisAddress> named = AskOne(sentinel);
    if (named.ok()) {
      absl::MutexLock lock(&mu_);
      first_sentinel_ = index;
      return named;
    }
    failures.push_back(absl::StrCat(FormatRedisAddress(sentinel), ": ", named.status().message()));
  }
  return absl::UnavailableError(absl::StrCat("redis-sentinel: no sentinel named the primary of \"",
                                             endpoint_.master_name, "\" (",
                                             absl::StrJoin(failures, "; "), ")"));
}

absl::StatusOr<RedisAddress> RedisPrimaryResolver::AskOne(const RedisAddress& sentinel) {
  const std::string argv[] = {"SENTINEL", "get-master-addr-by-name", endpoint_.master_name};
  absl::StatusOr<RedisValue> v = RedisCommandOnce(sentinel, ask_timeout_, argv);
  if (!v.ok()) return v.status();
  if (v->is_error()) return absl::UnavailableError(v->str);
  if (v->is_nil()) return absl::UnavailableError("does not monitor this master");
  RedisAddress address;
  if (!v->is_array() || v->elements.size() != 2 ||
      !absl::SimpleAtoi(v->elements[1].str, &address.port)) {
    return absl::UnavailableError("unexpected reply");
  }
  address.host = v->elements[0].str;
  return address;
}

}  // namespace conveyor::orchestrator
