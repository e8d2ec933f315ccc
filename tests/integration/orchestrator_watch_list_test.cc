// conveyor-orchestrator end to end (fixture: orchestrator_fixture.h):
// WatchChain's history and live events, the watch cap, ListChains' filters
// and pages.

#include "tests/integration/orchestrator_fixture.h"

namespace conveyor::testing {
namespace {

using v1::Chain;
using v1::ChainEvent;

TEST_F(OrchestratorTest, WatchChainStreamsHistoryThenLiveEvents) {
  Worker slow = StartFlaky({"--delay", "400ms"});
  Orchestrator o = StartOrchestrator({{"resize", slow.address}});
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*o.stub, InlineRequest({Resize(), Resize()}), &submitted).ok());
  WaitForChain(*o.stub, submitted.name(),
               [](const Chain& c) { return c.steps(0).state() == v1::RUNNING; });
  grpc::Status status;
  std::vector<ChainEvent> events = WatchEvents(*o.stub, submitted.name(), "", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<std::pair<ChainEvent::Type, int>> seen;
  for (const auto& e : events) seen.emplace_back(e.type(), e.step_index());
  EXPECT_EQ(seen,
            (std::vector<std::pair<ChainEvent::Type, int>>{{ChainEvent::CHAIN_SUBMITTED, -1},
                                                           {ChainEvent::STEP_STARTED, 0},
                                                           {ChainEvent::STEP_SUCCEEDED, 0},
                                                           {ChainEvent::STEP_STARTED, 1},
                                                           {ChainEvent::STEP_SUCCEEDED, 1},
                                                           {ChainEvent::CHAIN_SUCCEEDED, -1}}));
  EXPECT_EQ(events.back().chain_state(), v1::SUCCEEDED);
  EXPECT_EQ(events.back().progress_percent(), 100);
  // Resuming after an event id returns only what followed it.
  std::vector<ChainEvent> rest =
      WatchEvents(*o.stub, submitted.name(), events[2].event_id(), &status);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(rest.size(), 3u);
  EXPECT_EQ(rest[0].event_id(), events[3].event_id());
  // Watching a finished chain after its last event ends at once.
  const absl::Time start = absl::Now();
  EXPECT_TRUE(WatchEvents(*o.stub, submitted.name(), events.back().event_id(), &status).empty());
  EXPECT_TRUE(status.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  // Unknown chain.
  WatchEvents(*o.stub, "chains/0123456789abcdef0123456789abcdef", "", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(OrchestratorTest, WatchesBeyondTheCapAreResourceExhausted) {
  Worker slow = StartFlaky({"--delay", "10s"});
  Orchestrator o = StartOrchestrator({{"resize", slow.address}}, {"--max-watches", "1"});
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*o.stub, InlineRequest({Resize()}), &submitted).ok());
  grpc::ClientContext first_ctx;
  v1::WatchChainRequest req;
  req.set_name(submitted.name());
  auto first = o.stub->WatchChain(&first_ctx, req);
  ChainEvent e;
  ASSERT_TRUE(first->Read(&e));  // the first watch is open
  grpc::Status status;
  WatchEvents(*o.stub, submitted.name(), "", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  first_ctx.TryCancel();
  while (first->Read(&e)) {
  }
  EXPECT_EQ(first->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(OrchestratorTest, ListChainsFiltersAndPaginates) {
  Worker flaky = StartFlaky();
  Orchestrator o = StartOrchestrator({{"resize", flaky.address}});
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    v1::SubmitChainRequest req = InlineRequest({Resize()});
    (*req.mutable_spec()->mutable_labels())["batch"] = i % 2 == 0 ? "even" : "odd";
    Chain c;
    ASSERT_TRUE(SubmitChain(*o.stub, req, &c).ok());
    names.insert(names.begin(), c.name());  // newest first
    absl::SleepFor(absl::Milliseconds(3));  // distinct create times
  }
  for (const auto& n : names) WaitForTerminal(*o.stub, n);
  std::vector<std::string> listed;
  v1::ListChainsRequest req;
  req.set_page_size(2);
  for (int page = 0; page < 5; ++page) {
    grpc::ClientContext ctx;
    v1::ListChainsResponse resp;
    ASSERT_TRUE(o.stub->ListChains(&ctx, req, &resp).ok());
    for (const auto& c : resp.chains()) listed.push_back(c.name());
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(listed, names);
  v1::ListChainsRequest odd;
  (*odd.mutable_labels())["batch"] = "odd";
  odd.set_state(v1::SUCCEEDED);
  grpc::ClientContext ctx;
  v1::ListChainsResponse resp;
  ASSERT_TRUE(o.stub->ListChains(&ctx, odd, &resp).ok());
  ASSERT_EQ(resp.chains_size(), 2);
  EXPECT_EQ(resp.chains(0).name(), names[1]);  // i = 3
  EXPECT_EQ(resp.chains(1).name(), names[3]);  // i = 1
  v1::ListChainsRequest bad;
  bad.set_page_size(5000);
  grpc::ClientContext bad_ctx;
  EXPECT_EQ(o.stub->ListChains(&bad_ctx, bad, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Purge: dry run counts, running chains are never touched.
  v1::PurgeChainsRequest purge;
  purge.set_dry_run(true);
  grpc::ClientContext purge_ctx;
  v1::PurgeChainsResponse purged;
  ASSERT_TRUE(o.stub->PurgeChains(&purge_ctx, purge, &purged).ok());
  EXPECT_EQ(purged.purged_count(), 5);
  purge.set_dry_run(false);
  purge.set_state(v1::RUNNING);
  grpc::ClientContext running_ctx;
  EXPECT_EQ(o.stub->PurgeChains(&running_ctx, purge, &purged).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  purge.set_state(v1::SUCCEEDED);
  grpc::ClientContext real_ctx;
  ASSERT_TRUE(o.stub->PurgeChains(&real_ctx, purge, &purged).ok());
  EXPECT_EQ(purged.purged_count(), 5);
  grpc::ClientContext get_ctx;
  v1::GetChainRequest get;
  get.set_name(names[0]);
  Chain gone;
  EXPECT_EQ(o.stub->GetChain(&get_ctx, get, &gone).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace conveyor::testing
