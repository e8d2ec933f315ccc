#include "orchestrator/redis_cancel_feed.h"

#include "orchestrator/redis/redis_keys.h"

namespace conveyor::orchestrator {

absl::StatusOr<absl::optional<CancelNotice>> RedisCancelFeed::Next(absl::Duration wait) {
  if (conn_ == nullptr || !conn_->connected()) {
    conn_ = pool_.NewConnection(absl::Seconds(2));
    absl::StatusOr<RedisValue> sub = conn_->Command({"SUBSCRIBE", std::string(kCancelChannel)});
    if (!sub.ok()) {
      conn_.reset();
      return sub.status();
    }
    return CancelNotice{CancelNotice::Kind::kSubscribed, ""};
  }
  absl::StatusOr<absl::optional<RedisValue>> msg = conn_->ReadPush(wait);
  if (!msg.ok()) {
    conn_.reset();
    return msg.status();
  }
  if (!msg->has_value()) return absl::nullopt;
  const RedisValue& m = **msg;
  if (!m.is_array() || m.elements.size() != 3 || m.elements[0].str != "message") {
    return absl::nullopt;
  }
  return CancelNotice{CancelNotice::Kind::kCancelled, m.elements[2].str};
}

}  // namespace conveyor::orchestrator
