#include "tests/testing/store_backend.h"

#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/redis_cancel_feed.h"
#include "orchestrator/redis_chain_store.h"
#include "tests/testing/in_memory_chain_store.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::orchestrator::testing {

struct StoreBackend::Parts {
  std::unique_ptr<InMemoryChainStore> memory;
  std::unique_ptr<conveyor::testing::RedisServer> redis;
  std::unique_ptr<RedisConnectionPool> pool;
  std::unique_ptr<RedisChainStore> redis_store;
};

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kMemory ? "Memory" : "Redis";
}

StoreBackend::StoreBackend(Backend backend, const Clock& clock, absl::Duration retention,
                           TenantQuotas quotas)
    : parts_(std::make_unique<Parts>()) {
  if (backend == Backend::kMemory) {
    InMemoryChainStoreOptions options;
    options.tenant_quotas = quotas;
    parts_->memory = std::make_unique<InMemoryChainStore>(clock, options);
    return;
  }
  parts_->redis = std::make_unique<conveyor::testing::RedisServer>(
      conveyor::testing::RedisServerOptions{.append_only = true});
  parts_->pool = std::make_unique<RedisConnectionPool>(*ParseRedisUrl(parts_->redis->url()),
                                                       absl::Seconds(1), absl::Seconds(5));
  RedisChainStoreOptions options;
  options.retention = retention;
  options.tenant_quotas = quotas;
  parts_->redis_store = std::make_unique<RedisChainStore>(*parts_->pool, options);
  EXPECT_TRUE(parts_->redis_store->EnsureGroups().ok());
}

StoreBackend::~StoreBackend() = default;

ChainStore& StoreBackend::store() {
  if (parts_->memory) return *parts_->memory;
  return *parts_->redis_store;
}

std::unique_ptr<CancelFeed> StoreBackend::NewCancelFeed() {
  if (parts_->memory) return parts_->memory->NewCancelFeed();
  return std::make_unique<RedisCancelFeed>(*parts_->pool);
}

void StoreBackend::GoDown() {
  if (parts_->memory) {
    parts_->memory->SetUnavailable(true);
  } else {
    parts_->redis->Kill();
  }
}

void StoreBackend::ComeBack() {
  if (parts_->memory) {
    parts_->memory->SetUnavailable(false);
  } else {
    parts_->redis->Restart();
  }
}

}  // namespace conveyor::orchestrator::testing
