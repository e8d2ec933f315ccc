#include <memory>
#include <utility>

#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/redis/redis_primary_resolver.h"

namespace conveyor::orchestrator {

RedisConnectionPool::RedisConnectionPool(RedisEndpoint endpoint, absl::Duration connect_timeout,
                                         absl::Duration command_timeout, size_t max_idle)
    : endpoint_(std::move(endpoint)),
      connect_timeout_(connect_timeout),
      command_timeout_(command_timeout),
      max_idle_(max_idle) {
  if (endpoint_.sentinel_managed()) {
    resolver_ = std::make_shared<RedisPrimaryResolver>(endpoint_, connect_timeout_);
  }
}

RedisConnectionPool::~RedisConnectionPool() = default;

RedisConnectionPool::Lease::~Lease() {
  if (conn_ != nullptr && pool_ != nullptr) pool_->Release(std::move(conn_));
}

RedisConnectionPool::Lease RedisConnectionPool::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      std::unique_ptr<RedisConnection> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
  }
  return Lease(this, NewConnection(command_timeout_));
}

std::unique_ptr<RedisConnection> RedisConnectionPool::NewConnection(
    absl::Duration command_timeout) const {
  return std::make_unique<RedisConnection>(endpoint_, connect_timeout_, command_timeout,
                                           resolver_);
}

void RedisConnectionPool::Release(std::unique_ptr<RedisConnection> conn) {
  if (!conn->connected()) return;
  absl::MutexLock lock(&mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(conn));
}

}  // namespace conveyor::orchestrator
