// CancelFeed over Redis pub/sub: SUBSCRIBE cv:cancel on a connection of its
// own (apply.lua PUBLISHes there when a transition cancels a chain).
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_CANCEL_FEED_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_CANCEL_FEED_H_

#include <memory>

#include "orchestrator/cancel_feed.h"
#include "orchestrator/redis/redis_connection.h"

namespace conveyor::orchestrator {

class RedisCancelFeed : public CancelFeed {
 public:
  explicit RedisCancelFeed(RedisConnectionPool& pool) : pool_(pool) {}

  absl::StatusOr<absl::optional<CancelNotice>> Next(absl::Duration wait) override;

 private:
  RedisConnectionPool& pool_;
  std::unique_ptr<RedisConnection> conn_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_CANCEL_FEED_H_
