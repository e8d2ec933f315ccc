// The chain store a core unit test runs on, chosen by test parameter: the
// in-memory store (hermetic: no server, waits end when their event happens)
// or RedisChainStore on a real redis-server of its own. The same test body
// on both keeps the fake honest: it must behave as Redis does.
#ifndef CONVEYOR_TESTS_TESTING_STORE_BACKEND_H_
#define CONVEYOR_TESTS_TESTING_STORE_BACKEND_H_

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "orchestrator/cancel_feed.h"
#include "orchestrator/chain_store.h"
#include "orchestrator/clock.h"

namespace conveyor::orchestrator::testing {

enum class Backend { kMemory, kRedis };

// "Memory" / "Redis", for INSTANTIATE_TEST_SUITE_P.
std::string BackendName(const ::testing::TestParamInfo<Backend>& info);

class StoreBackend {
 public:
  // `retention` applies to Redis only (the in-memory store keeps chains).
  StoreBackend(Backend backend, const Clock& clock, absl::Duration retention = absl::Hours(1),
               TenantQuotas quotas = {});
  ~StoreBackend();

  ChainStore& store();
  // A cancel feed of this store for one reader.
  std::unique_ptr<CancelFeed> NewCancelFeed();
  // The store becomes unreachable (Redis: SIGKILL of the server) and comes
  // back with its data (Redis restarts from its append-only file).
  void GoDown();
  void ComeBack();

 private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

}  // namespace conveyor::orchestrator::testing

#endif  // CONVEYOR_TESTS_TESTING_STORE_BACKEND_H_
