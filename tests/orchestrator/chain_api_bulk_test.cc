// ChainApi's bulk actions (CancelMany / RetryMany), each test on the
// in-memory store (hermetic) and on RedisChainStore with a real
// redis-server: paging past one page, max_chains, the skip of a chain
// that changed between being listed and being written.
#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "absl/strings/str_format.h"
#include "orchestrator/chain_api.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/callers.h"
#include "tests/testing/forwarding_chain_store.h"
#include "tests/testing/store_backend.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::Chain;

// The store under test, with a hook that runs after each List (another
// writer acting between the listing and the action) and a count of writes.
class InterleavingStore : public testing::ForwardingChainStore {
 public:
  using ForwardingChainStore::ForwardingChainStore;
  std::function<void(const ListPage&)> after_list;
  int applies = 0;

  absl::StatusOr<ListPage> List(const ListQuery& query) override {
    absl::StatusOr<ListPage> page = inner_.List(query);
    if (page.ok() && after_list) after_list(*page);
    return page;
  }
  absl::Status Apply(int64_t expected, const Transition& t, const ApplyExtras& extras) override {
    ++applies;
    return inner_.Apply(expected, t, extras);
  }
};

class ChainApiBulkTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    store_ = std::make_unique<InterleavingStore>(backend_.store());
    api_ = std::make_unique<ChainApi>(*store_, scheduler_, stages_, clock_, ChainApiOptions{});
  }

  // A one-step chain that FAILED at its download (permanent error).
  std::string Failed(int i) {
    conveyor::v1::ChainSpec spec;
    spec.add_steps()->mutable_download()->set_url("https://example.com/a.jpg");
    (*spec.mutable_labels())["team"] = "web";
    clock_.Advance(absl::Milliseconds(1));
    Transition t = scheduler_.Submit(spec, absl::StrFormat("%032x", i), "", absl::nullopt);
    EXPECT_TRUE(backend_.store().Submit(t, "h", nullptr).ok());
    Chain c = t.chain;
    ClaimDecision d = scheduler_.OnClaim(c, 0, true);
    EXPECT_TRUE(backend_.store().Apply(c.version(), d.transition, {}).ok());
    c = d.transition.chain;
    AttemptResult r;
    r.status = absl::NotFoundError("HTTP 404");
    r.permanent = true;
    Transition failed = scheduler_.OnAttemptResult(c, 0, 1, r);
    EXPECT_TRUE(backend_.store().Apply(c.version(), failed, {}).ok());
    EXPECT_EQ(failed.chain.state(), conveyor::v1::FAILED);
    return failed.chain.name();
  }

  Chain Load(const std::string& name) {
    absl::StatusOr<StoredChain> s = backend_.store().Load(ChainIdFromName(name));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->chain : Chain();
  }

  conveyor::v1::RetryChainsRequest FailedRequest(bool dry_run, int max_chains = 0) {
    conveyor::v1::RetryChainsRequest r;
    r.mutable_filter()->set_state(conveyor::v1::FAILED);
    r.set_dry_run(dry_run);
    r.set_max_chains(max_chains);
    return r;
  }

  testing::FakeClock clock_;
  testing::FixedRandom random_;
  Scheduler scheduler_{clock_, random_};
  testing::NoCallsStageClient stages_;
  testing::StoreBackend backend_{GetParam(), clock_, absl::Hours(24 * 7)};
  std::unique_ptr<InterleavingStore> store_;
  std::unique_ptr<ChainApi> api_;
};

INSTANTIATE_TEST_SUITE_P(Stores, ChainApiBulkTest,
                         ::testing::Values(testing::Backend::kMemory, testing::Backend::kRedis),
                         testing::BackendName);

TEST_P(ChainApiBulkTest, ChainThatStoppedMatchingAfterBeingListedIsSkipped) {
  std::vector<std::string> names;
  for (int i = 0; i < 3; ++i) names.push_back(Failed(i));
  // Between the listing and the action someone retries names[1] and cancels
  // it: CANCELLED could be retried, but no longer matches state=FAILED.
  bool raced = false;
  store_->after_list = [&](const ListPage& page) {
    if (raced || page.chains.size() != 3) return;
    raced = true;
    ASSERT_TRUE(api_->Retry(testing::TenantUser(), names[1]).ok());
    ASSERT_TRUE(api_->Cancel(testing::TenantUser(), names[1]).ok());
  };
  absl::StatusOr<conveyor::v1::BulkChainsResponse> r =
      api_->RetryMany(testing::TenantUser(), FailedRequest(false));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(raced);
  EXPECT_EQ(r->matched_count(), 3);
  EXPECT_EQ(r->changed_count(), 2);
  EXPECT_EQ(r->skipped_count(), 1);
  EXPECT_EQ(r->failed_count(), 0);
  EXPECT_EQ(std::vector<std::string>(r->changed_names().begin(), r->changed_names().end()),
            (std::vector<std::string>{names[2], names[0]}));  // newest first
  for (const std::string& n : {names[0], names[2]}) {
    EXPECT_EQ(Load(n).state(), conveyor::v1::PENDING) << n;
    EXPECT_EQ(Load(n).retries(), 1) << n;
  }
  EXPECT_EQ(Load(names[1]).state(), conveyor::v1::CANCELLED);
  EXPECT_EQ(Load(names[1]).retries(), 1);
}

TEST_P(ChainApiBulkTest, PagesPastOnePageCountsAndStopsAtMaxChains) {
  const int n = kBulkPageSize * 2 + 50;
  for (int i = 0; i < n; ++i) Failed(i);
  store_->applies = 0;
  absl::StatusOr<conveyor::v1::BulkChainsResponse> dry =
      api_->RetryMany(testing::TenantUser(), FailedRequest(true));
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->matched_count(), n);
  EXPECT_EQ(dry->changed_count(), n);
  EXPECT_EQ(dry->changed_names_size(), kMaxBulkNames);
  EXPECT_FALSE(dry->truncated());
  EXPECT_EQ(store_->applies, 0);  // a dry run writes nothing

  absl::StatusOr<conveyor::v1::BulkChainsResponse> some =
      api_->RetryMany(testing::TenantUser(), FailedRequest(false, kBulkPageSize + 1));
  ASSERT_TRUE(some.ok()) << some.status();
  EXPECT_EQ(some->matched_count(), kBulkPageSize + 1);
  EXPECT_EQ(some->changed_count(), kBulkPageSize + 1);
  EXPECT_TRUE(some->truncated());
  // Newest first: the newest kBulkPageSize + 1 are retried, the rest still
  // FAILED.
  EXPECT_EQ(Load(absl::StrFormat("%032x", n - 1)).state(), conveyor::v1::PENDING);
  EXPECT_EQ(Load(absl::StrFormat("%032x", n - kBulkPageSize - 2)).state(), conveyor::v1::FAILED);
  // Calling again goes on with the rest.
  absl::StatusOr<conveyor::v1::BulkChainsResponse> rest =
      api_->RetryMany(testing::TenantUser(), FailedRequest(false));
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->changed_count(), n - kBulkPageSize - 1);
  EXPECT_FALSE(rest->truncated());
  EXPECT_EQ(Load(absl::StrFormat("%032x", 0)).state(), conveyor::v1::PENDING);
}

TEST_P(ChainApiBulkTest, CancelManyLeavesFinishedChainsAloneAndCountsThem) {
  const std::string failed = Failed(0);
  clock_.Advance(absl::Milliseconds(1));
  conveyor::v1::ChainSpec spec;
  spec.add_steps()->mutable_download()->set_url("https://example.com/b.jpg");
  (*spec.mutable_labels())["team"] = "web";
  Transition pending = scheduler_.Submit(spec, absl::StrFormat("%032x", 99), "", absl::nullopt);
  ASSERT_TRUE(backend_.store().Submit(pending, "h", nullptr).ok());
  conveyor::v1::CancelChainsRequest req;
  (*req.mutable_filter()->mutable_labels())["team"] = "web";
  absl::StatusOr<conveyor::v1::BulkChainsResponse> r = api_->CancelMany(testing::TenantUser(), req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->matched_count(), 2);
  EXPECT_EQ(r->changed_count(), 1);
  EXPECT_EQ(r->skipped_count(), 1);
  EXPECT_EQ(Load(pending.chain.name()).state(), conveyor::v1::CANCELLED);
  EXPECT_EQ(Load(failed).state(), conveyor::v1::FAILED);
}

}  // namespace
}  // namespace conveyor::orchestrator
