#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>

#include "absl/synchronization/notification.h"

namespace conveyor {
namespace {

TEST(WorkerPoolTest, RunsEveryAcceptedTask) {
  std::atomic<int> runs{0};
  {
    WorkerPool pool(2, 100);
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(pool.TrySubmit([&runs] { ++runs; }));
  }  // destructor drains
  EXPECT_EQ(runs.load(), 50);
}

TEST(WorkerPoolTest, RefusesAtOnceWhenFull) {
  absl::Notification release;
  WorkerPool pool(1, 1);
  ASSERT_TRUE(pool.TrySubmit([&release] { release.WaitForNotification(); }));
  ASSERT_TRUE(pool.TrySubmit([] {}));   // waits in the queue
  EXPECT_FALSE(pool.TrySubmit([] {}));  // over threads + queue
  EXPECT_EQ(pool.InFlight(), 2u);
  release.Notify();
  pool.Shutdown();
  EXPECT_EQ(pool.InFlight(), 0u);
}

TEST(WorkerPoolTest, RefusesAfterShutdown) {
  WorkerPool pool(1, 4);
  pool.Shutdown();
  EXPECT_FALSE(pool.TrySubmit([] {}));
}

}  // namespace
}  // namespace conveyor
