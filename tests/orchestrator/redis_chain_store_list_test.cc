// RedisChainStore's index against a real redis-server (fixture:
// redis_chain_store_fixture.h): ListChains' filters, pages, scan and byte
// budgets, expired entries, purge.
#include "orchestrator/redis_chain_store.h"

#include <gtest/gtest.h>

#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "orchestrator/redis/redis_keys.h"
#include "orchestrator/scheduler.h"
#include "tests/orchestrator/fakes.h"
#include "tests/orchestrator/redis_chain_store_fixture.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/run_steps.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::ChainSpec;

TEST_F(RedisChainStoreTest, ListFiltersAndPaginatesNewestFirst) {
  for (int i = 0; i < 7; ++i) {
    ChainSpec spec = Spec();
    (*spec.mutable_labels())["team"] = i % 2 == 0 ? "a" : "b";
    SubmitNew("c" + std::to_string(i), spec);
    clock_.Advance(absl::Seconds(1));
  }
  ListQuery q;
  q.page_size = 3;
  std::vector<std::string> names;
  for (int page = 0; page < 5; ++page) {
    absl::StatusOr<ListPage> p = store_->List(q);
    ASSERT_TRUE(p.ok()) << p.status();
    for (const Chain& c : p->chains) names.push_back(c.name());
    if (p->next_page_token.empty()) break;
    q.page_token = p->next_page_token;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"chains/c6", "chains/c5", "chains/c4", "chains/c3",
                                             "chains/c2", "chains/c1", "chains/c0"}));
  ListQuery by_label;
  by_label.labels["team"] = "b";
  absl::StatusOr<ListPage> b = store_->List(by_label);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->chains.size(), 3u);
  EXPECT_EQ(b->chains[0].name(), "chains/c5");
  EXPECT_TRUE(b->next_page_token.empty());
  ListQuery by_time;
  by_time.created_after = clock_.Now() - absl::Seconds(3);
  EXPECT_EQ(store_->List(by_time)->chains.size(), 3u);
  ListQuery by_state;
  by_state.state = conveyor::v1::RUNNING;
  EXPECT_TRUE(store_->List(by_state)->chains.empty());
  ListQuery bad;
  bad.page_token = "!!";
  EXPECT_EQ(store_->List(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RedisChainStoreTest, PurgeDeletesOnlyFinishedChainsAndDryRunCounts) {
  Chain running = SubmitNew("run");
  Chain c = SubmitNew("done");
  absl::StatusOr<Transition> cancel = scheduler_.Cancel(c);
  ASSERT_TRUE(store_->Apply(1, *cancel, {}).ok());
  clock_.Advance(absl::Seconds(10));
  absl::StatusOr<PurgeOutcome> dry = store_->Purge(conveyor::v1::STATE_UNSPECIFIED,
                                                   clock_.Now(), "", true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->count, 1);
  EXPECT_EQ(Exists(ChainMetaKey("done")), 1);
  absl::StatusOr<PurgeOutcome> purged = store_->Purge(conveyor::v1::CANCELLED, clock_.Now(), "", false);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(purged->count, 1);
  ASSERT_EQ(purged->sample_names.size(), 1u);
  EXPECT_EQ(purged->sample_names[0], "chains/done");
  EXPECT_EQ(Exists(ChainMetaKey("done")), 0);
  EXPECT_EQ(Exists(ChainEventsKey("done")), 0);
  EXPECT_EQ(Exists(ChainMetaKey("run")), 1);
}

TEST_F(RedisChainStoreTest, ListSkipsIndexEntriesOfExpiredChainsAndPurgeRemovesThem) {
  Chain gone = SubmitNew("gone");
  absl::StatusOr<Transition> cancel = scheduler_.Cancel(gone);
  ASSERT_TRUE(cancel.ok());
  ASSERT_TRUE(store_->Apply(gone.version(), *cancel, {}).ok());
  clock_.Advance(absl::Seconds(1));
  SubmitNew("kept");
  auto conn = pool_->Acquire();
  ASSERT_TRUE(conn->Command({"DEL", ChainMetaKey("gone")}).ok());  // as if expired
  absl::StatusOr<ListPage> page = store_->List(ListQuery{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->chains.size(), 1u);
  EXPECT_EQ(page->chains[0].name(), "chains/kept");
  // List only reads; PurgeChains removes the dangling entries.
  EXPECT_FALSE(conn->Command({"ZSCORE", std::string(kAllIndexKey), "gone"})->is_nil());
  ASSERT_TRUE(store_->Purge(conveyor::v1::STATE_UNSPECIFIED, clock_.Now(), "", false).ok());
  EXPECT_TRUE(conn->Command({"ZSCORE", std::string(kAllIndexKey), "gone"})->is_nil());
  EXPECT_TRUE(
      conn->Command({"ZSCORE", StateIndexKey(conveyor::v1::CANCELLED), "gone"})->is_nil());
  EXPECT_FALSE(conn->Command({"ZSCORE", std::string(kAllIndexKey), "kept"})->is_nil());
}

TEST_F(RedisChainStoreTest, ListFiltersByStageAndErrorReasonOverAnyIndex) {
  // c0: fails at download (UNAVAILABLE); c1: fails at resize (INTERNAL);
  // c2: still at download. Newest first: c2, c1, c0.
  auto fail_at = [&](const std::string& id, int step, absl::Status error) {
    absl::StatusOr<Chain> c = testing::RunSteps(scheduler_, *store_, SubmitNew(id), step, error);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_EQ(c->state(), conveyor::v1::FAILED);
  };
  fail_at("c0", 0, absl::UnavailableError("down"));
  clock_.Advance(absl::Seconds(1));
  fail_at("c1", 1, absl::InternalError("boom"));
  clock_.Advance(absl::Seconds(1));
  SubmitNew("c2");
  auto names = [&](ListQuery q) {
    std::vector<std::string> out;
    absl::StatusOr<ListPage> page = store_->List(q);
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const Chain& c : page->chains) out.push_back(c.name());
    }
    return out;
  };
  ListQuery at_download;  // the all index
  at_download.stage = conveyor::v1::STAGE_KIND_DOWNLOAD;
  EXPECT_EQ(names(at_download), (std::vector<std::string>{"chains/c2", "chains/c0"}));
  ListQuery failed_at_download = at_download;  // the state index
  failed_at_download.state = conveyor::v1::FAILED;
  EXPECT_EQ(names(failed_at_download), std::vector<std::string>{"chains/c0"});
  ListQuery labelled = at_download;  // a label index
  labelled.labels["team"] = "a";
  EXPECT_EQ(names(labelled), (std::vector<std::string>{"chains/c2", "chains/c0"}));
  ListQuery internal;
  internal.error_reason = "INTERNAL";
  EXPECT_EQ(names(internal), std::vector<std::string>{"chains/c1"});
  internal.stage = conveyor::v1::STAGE_KIND_DOWNLOAD;
  EXPECT_TRUE(names(internal).empty());
  ListQuery ended;
  ended.ended_after = clock_.Now() - absl::Milliseconds(1500);
  EXPECT_EQ(names(ended), std::vector<std::string>{"chains/c1"});
  // Paging one at a time through a post-filtered scan loses nothing.
  ListQuery paged = at_download;
  paged.page_size = 1;
  std::vector<std::string> all;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<ListPage> page = store_->List(paged);
    ASSERT_TRUE(page.ok());
    for (const Chain& c : page->chains) all.push_back(c.name());
    if (page->next_page_token.empty()) break;
    paged.page_token = page->next_page_token;
  }
  EXPECT_EQ(all, (std::vector<std::string>{"chains/c2", "chains/c0"}));
}

TEST_F(RedisChainStoreTest, ScanBudgetEndsAShortPageWithATokenThatResumes) {
  // Five chains; only the oldest two are labelled run=x, so a post-filter
  // over the PENDING index has to read past three that do not match.
  for (int i = 0; i < 5; ++i) {
    ChainSpec spec = Spec();
    if (i < 2) (*spec.mutable_labels())["run"] = "x";
    SubmitNew("s" + std::to_string(i), spec);
    clock_.Advance(absl::Seconds(1));
  }
  ListQuery q;
  q.state = conveyor::v1::PENDING;
  q.labels["run"] = "x";
  q.max_scan = 2;
  std::vector<std::string> names;
  std::vector<size_t> page_sizes;
  for (int call = 0; call < 10; ++call) {
    absl::StatusOr<ListPage> page = store_->List(q);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->scanned, 2);
    page_sizes.push_back(page->chains.size());
    for (const Chain& c : page->chains) names.push_back(c.name());
    if (page->next_page_token.empty()) break;
    q.page_token = page->next_page_token;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"chains/s1", "chains/s0"}));
  // s4 s3 | s2 s1 | s0: an empty page first, each cut short by the budget.
  EXPECT_EQ(page_sizes, (std::vector<size_t>{0, 1, 1}));
}

TEST_F(RedisChainStoreTest, ListStopsAtThePageByteBudget) {
  for (int i = 0; i < 5; ++i) {
    SubmitNew(absl::StrCat("c", i));
    clock_.Advance(absl::Milliseconds(1));
  }
  ListQuery q;
  q.page_size = 100;
  const int64_t one = static_cast<int64_t>(store_->Load("c0")->chain.ByteSizeLong());
  q.max_page_bytes = 128 + 2 * (one + 6) + 1;  // room for two chains
  std::vector<std::string> names;
  for (int page = 0; page < 10; ++page) {
    absl::StatusOr<ListPage> p = store_->List(q);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_LE(p->chains.size(), 2u);
    for (const Chain& c : p->chains) names.push_back(c.name());
    if (p->next_page_token.empty()) break;
    q.page_token = p->next_page_token;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"chains/c4", "chains/c3", "chains/c2", "chains/c1",
                                             "chains/c0"}));
  // A budget smaller than one chain still returns one per page.
  q.page_token.clear();
  q.max_page_bytes = 1;
  absl::StatusOr<ListPage> tiny = store_->List(q);
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->chains.size(), 1u);
  EXPECT_FALSE(tiny->next_page_token.empty());
}

}  // namespace
}  // namespace conveyor::orchestrator
