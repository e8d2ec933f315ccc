// The fixture of the RedisChainStore tests (redis_chain_store_*test.cc, one
// binary): a store on a real redis-server on a free loopback port, a
// scheduler on a fake clock to make its transitions.
#ifndef CONVEYOR_TESTS_ORCHESTRATOR_REDIS_CHAIN_STORE_FIXTURE_H_
#define CONVEYOR_TESTS_ORCHESTRATOR_REDIS_CHAIN_STORE_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "orchestrator/redis_chain_store.h"
#include "orchestrator/scheduler.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::orchestrator {

inline conveyor::v1::ChainSpec Spec(
    conveyor::v1::Priority priority = conveyor::v1::PRIORITY_NORMAL) {
  conveyor::v1::ChainSpec spec;
  spec.add_steps()->mutable_download()->set_url("https://example.com/a.jpg");
  spec.add_steps()->mutable_resize()->set_width(10);
  spec.set_priority(priority);
  (*spec.mutable_labels())["team"] = "a";
  return spec;
}

class RedisChainStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = *ParseRedisUrl(redis_.url());
    pool_ = std::make_unique<RedisConnectionPool>(endpoint_, absl::Seconds(1), absl::Seconds(5));
    RedisChainStoreOptions options;
    options.retention = absl::Hours(1);
    store_ = std::make_unique<RedisChainStore>(*pool_, options);
    ASSERT_TRUE(store_->EnsureGroups().ok());
  }
  conveyor::v1::Chain SubmitNew(const std::string& id,
                                const conveyor::v1::ChainSpec& spec = Spec()) {
    Transition t = scheduler_.Submit(spec, id, "", absl::nullopt);
    absl::StatusOr<SubmitOutcome> out = store_->Submit(t, "hash", nullptr);
    EXPECT_TRUE(out.ok()) << out.status();
    return t.chain;
  }
  int64_t Exists(const std::string& key) {
    auto conn = pool_->Acquire();
    return conn->Command({"EXISTS", key})->integer;
  }
  int64_t Ttl(const std::string& key) {
    auto conn = pool_->Acquire();
    return conn->Command({"TTL", key})->integer;
  }

  testing::FakeClock clock_;
  testing::FixedRandom random_;
  Scheduler scheduler_{clock_, random_};
  conveyor::testing::RedisServer redis_;
  RedisEndpoint endpoint_;
  std::unique_ptr<RedisConnectionPool> pool_;
  std::unique_ptr<RedisChainStore> store_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_TESTS_ORCHESTRATOR_REDIS_CHAIN_STORE_FIXTURE_H_
