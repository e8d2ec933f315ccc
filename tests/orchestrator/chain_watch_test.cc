// FollowChain, the WatchChain loop, on the in-memory store (hermetic) and on
// Redis: the history then live events, resuming after an event id, the end
// at a terminal event, an unknown chain, and a reader that goes away.
#include "orchestrator/chain_watch.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "orchestrator/scheduler.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/store_backend.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;

class ChainWatchTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  // A one-step download chain, stored.
  Chain Submit(const std::string& id) {
    conveyor::v1::ChainSpec spec;
    spec.add_steps()->mutable_download()->set_url("https://example.com/a.jpg");
    Transition t = scheduler_.Submit(spec, id, "", absl::nullopt);
    EXPECT_TRUE(store().Submit(t, "hash", nullptr).ok());
    return t.chain;
  }
  // Runs its step to success, as the dispatcher records it.
  void Succeed(Chain c) {
    ClaimDecision d = scheduler_.OnClaim(c, 0, true);
    ASSERT_TRUE(store().Apply(c.version(), d.transition, {}).ok());
    c = d.transition.chain;
    AttemptResult r;
    r.output.mutable_image()->set_width(3);
    Transition done = scheduler_.OnAttemptResult(c, 0, 1, r);
    const std::string bytes = "img";
    ApplyExtras extras;
    extras.output_blob = &bytes;
    ASSERT_TRUE(store().Apply(c.version(), done, extras).ok());
  }
  std::vector<ChainEvent::Type> Follow(const std::string& id, const std::string& after,
                                       absl::Status* status, std::vector<ChainEvent>* events = nullptr) {
    std::vector<ChainEvent::Type> types;
    *status = FollowChain(
        store(), id, after,
        [&](ChainEvent& e) {
          types.push_back(e.type());
          if (events != nullptr) events->push_back(e);
          return true;
        },
        [] { return false; });
    return types;
  }
  ChainStore& store() { return backend_.store(); }

  testing::FakeClock clock_;
  testing::FixedRandom random_;
  Scheduler scheduler_{clock_, random_};
  testing::StoreBackend backend_{GetParam(), clock_};
};

INSTANTIATE_TEST_SUITE_P(Stores, ChainWatchTest,
                         ::testing::Values(testing::Backend::kMemory, testing::Backend::kRedis),
                         testing::BackendName);

TEST_P(ChainWatchTest, StreamsTheHistoryThenLiveEventsAndEndsAtTheTerminalOne) {
  Chain c = Submit("0123456789abcdef0123456789abcdef");
  // The step runs once the watch has streamed the history: the rest is live.
  absl::Notification history_read;
  std::thread runner([&] {
    history_read.WaitForNotification();
    Succeed(c);
  });
  std::vector<ChainEvent::Type> types;
  absl::Status status = FollowChain(
      store(), ChainIdFromName(c.name()), "0",
      [&](ChainEvent& e) {
        types.push_back(e.type());
        if (!history_read.HasBeenNotified()) history_read.Notify();
        return true;
      },
      [] { return false; });
  runner.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(types, (std::vector<ChainEvent::Type>{ChainEvent::CHAIN_SUBMITTED,
                                                  ChainEvent::STEP_STARTED,
                                                  ChainEvent::STEP_SUCCEEDED,
                                                  ChainEvent::CHAIN_SUCCEEDED}));
}

TEST_P(ChainWatchTest, ResumesAfterAnEventIdAndEndsAtOnceForAnEndedChain) {
  Chain c = Submit("0123456789abcdef0123456789abcdef");
  Succeed(c);
  absl::Status status;
  std::vector<ChainEvent> events;
  Follow(ChainIdFromName(c.name()), "", &status, &events);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(events.size(), 4u);
  std::vector<ChainEvent::Type> rest = Follow(ChainIdFromName(c.name()), events[1].event_id(), &status);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(rest, (std::vector<ChainEvent::Type>{ChainEvent::STEP_SUCCEEDED,
                                                 ChainEvent::CHAIN_SUCCEEDED}));
  // Watched after its last event: nothing new, and the chain has ended.
  EXPECT_TRUE(Follow(ChainIdFromName(c.name()), events[3].event_id(), &status).empty());
  EXPECT_TRUE(status.ok()) << status;
}

TEST_P(ChainWatchTest, UnknownChainIsNotFoundAndAGoneReaderCancels) {
  absl::Status status;
  EXPECT_TRUE(Follow("ffffffffffffffffffffffffffffffff", "0", &status).empty());
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  Chain c = Submit("0123456789abcdef0123456789abcdef");
  status = FollowChain(store(), ChainIdFromName(c.name()), "0",
                       [](ChainEvent&) { return false; }, [] { return false; });
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace conveyor::orchestrator
