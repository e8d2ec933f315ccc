// Tenants in ChainApi, each test on the in-memory store (hermetic) and on
// RedisChainStore with a real redis-server: another tenant's chain is
// NOT_FOUND for every read and action, lists, bulk actions and purges cover
// the caller's tenant, idempotency keys are per tenant, quotas hold, and the
// chain and its events record who did what.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

#include "common/stage_registry.h"
#include "common/status_details.h"
#include "orchestrator/chain_api.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/callers.h"
#include "tests/testing/store_backend.h"
#include "tests/testing/test_images.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::testing::PaddedPng;
using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;

const Caller kAlice = testing::TenantUser("acme", "alice");
const Caller kBob = testing::TenantUser("globex", "bob");

class ChainApiTenantTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override { Start({}); }
  void Start(TenantQuotas quotas) {
    api_.reset();
    RedisChainStoreOptions options;
    options.retention = absl::Hours(24);
    options.tenant_quotas = quotas;
    backend_ = std::make_unique<testing::StoreBackend>(GetParam(), clock_, options);
    api_ = std::make_unique<ChainApi>(backend_->store(), scheduler_, stages_, clock_,
                                      ChainApiOptions{});
  }

  // download -> resize -> upload, labelled team=web.
  static conveyor::v1::SubmitChainRequest DownloadRequest(const std::string& key = "") {
    conveyor::v1::SubmitChainRequest req;
    req.mutable_spec()->add_steps()->mutable_download()->set_url("https://example.com/a.png");
    req.mutable_spec()->add_steps()->mutable_resize()->set_width(4);
    req.mutable_spec()->add_steps()->mutable_upload()->set_destination("file:///out");
    (*req.mutable_spec()->mutable_labels())["team"] = "web";
    req.set_idempotency_key(key);
    return req;
  }
  // resize -> upload of an inline PNG of about `bytes` bytes.
  static conveyor::v1::SubmitChainRequest InlineRequest(size_t bytes) {
    conveyor::v1::SubmitChainRequest req;
    req.mutable_spec()->add_steps()->mutable_resize()->set_width(4);
    req.mutable_spec()->add_steps()->mutable_upload()->set_destination("file:///out");
    req.mutable_source()->set_data(PaddedPng(bytes));
    return req;
  }
  Chain Submit(const Caller& caller, const conveyor::v1::SubmitChainRequest& req) {
    clock_.Advance(absl::Milliseconds(1));
    absl::StatusOr<Chain> c = api_->Submit(caller, req);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : Chain();
  }
  std::set<std::string> Listed(const Caller& caller) {
    absl::StatusOr<conveyor::v1::ListChainsResponse> page =
        api_->List(caller, conveyor::v1::ListChainsRequest());
    EXPECT_TRUE(page.ok()) << page.status();
    std::set<std::string> names;
    if (page.ok()) {
      for (const Chain& c : page->chains()) names.insert(c.name());
    }
    return names;
  }
  std::vector<ChainEvent> Events(const Chain& chain) {
    absl::StatusOr<EventBatch> batch =
        backend_->store().Events(ChainIdFromName(chain.name()), "0", 100, absl::ZeroDuration());
    EXPECT_TRUE(batch.ok()) << batch.status();
    return batch.ok() ? batch->events : std::vector<ChainEvent>{};
  }

  testing::FakeClock clock_;
  testing::FixedRandom random_;
  Scheduler scheduler_{clock_, random_};
  testing::NoCallsStageClient stages_;
  std::unique_ptr<testing::StoreBackend> backend_;
  std::unique_ptr<ChainApi> api_;
};

INSTANTIATE_TEST_SUITE_P(Stores, ChainApiTenantTest,
                         ::testing::Values(testing::Backend::kMemory, testing::Backend::kRedis),
                         testing::BackendName);

TEST_P(ChainApiTenantTest, AnotherTenantsChainIsNotFoundInTheWordsOfAnUnknownOne) {
  const Chain mine = Submit(kAlice, DownloadRequest());
  const std::string unknown = "chains/0123456789abcdef0123456789abcdef";
  const absl::Status not_there = api_->Get(kBob, unknown).status();
  ASSERT_EQ(not_there.code(), absl::StatusCode::kNotFound);

  for (const absl::Status& s :
       {api_->Get(kBob, mine.name()).status(), api_->Cancel(kBob, mine.name()).status(),
        api_->Retry(kBob, mine.name()).status(),
        LoadForCaller(backend_->store(), kBob, ChainIdFromName(mine.name())).status()}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
    EXPECT_EQ(s.message(), absl::StrCat(mine.name(), " not found"));
    EXPECT_EQ(ErrorReason(s), ErrorReason(not_there));
  }
  // Bob's attempts changed nothing; Alice and an operator of every tenant see
  // it.
  absl::StatusOr<Chain> got = api_->Get(kAlice, mine.name());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->state(), conveyor::v1::PENDING);
  EXPECT_EQ(got->version(), mine.version());
  EXPECT_TRUE(api_->Get(testing::SystemAdmin(), mine.name()).ok());
}

TEST_P(ChainApiTenantTest, ListsBulkActionsAndPurgeCoverOnlyTheCallersTenant) {
  const Chain a1 = Submit(kAlice, DownloadRequest());
  const Chain a2 = Submit(kAlice, DownloadRequest());
  const Chain b1 = Submit(kBob, DownloadRequest());
  EXPECT_EQ(Listed(kAlice), (std::set<std::string>{a1.name(), a2.name()}));
  EXPECT_EQ(Listed(kBob), (std::set<std::string>{b1.name()}));
  EXPECT_EQ(Listed(testing::SystemAdmin()).size(), 3u);

  conveyor::v1::CancelChainsRequest cancel;
  (*cancel.mutable_filter()->mutable_labels())["team"] = "web";
  absl::StatusOr<conveyor::v1::BulkChainsResponse> bulk = api_->CancelMany(kBob, cancel);
  ASSERT_TRUE(bulk.ok()) << bulk.status();
  EXPECT_EQ(bulk->matched_count(), 1);
  EXPECT_EQ(bulk->changed_count(), 1);
  EXPECT_EQ(api_->Get(kAlice, a1.name())->state(), conveyor::v1::PENDING);
  ASSERT_TRUE(api_->Cancel(kAlice, a1.name()).ok());

  // One cancelled chain each: Bob's purge takes only his.
  absl::StatusOr<conveyor::v1::PurgeChainsResponse> purged =
      api_->Purge(kBob, conveyor::v1::PurgeChainsRequest());
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(purged->purged_count(), 1);
  ASSERT_EQ(purged->purged_names_size(), 1);
  EXPECT_EQ(purged->purged_names(0), b1.name());
  EXPECT_TRUE(api_->Get(kAlice, a1.name()).ok());
  EXPECT_EQ(Listed(kBob), std::set<std::string>{});
}

TEST_P(ChainApiTenantTest, IdempotencyKeysArePerTenantAndNeverNameAnotherTenantsChain) {
  const Chain alices = Submit(kAlice, DownloadRequest("order-42"));
  // The same key from another tenant, with another spec: a chain of its own.
  conveyor::v1::SubmitChainRequest other = InlineRequest(300);
  other.set_idempotency_key("order-42");
  const Chain bobs = Submit(kBob, other);
  EXPECT_NE(bobs.name(), alices.name());
  EXPECT_EQ(bobs.tenant(), "globex");
  // Within a tenant the key still deduplicates, and a clash names only the
  // tenant's own chain.
  EXPECT_EQ(Submit(kBob, other).name(), bobs.name());
  absl::Status clash = api_->Submit(kAlice, other).status();
  EXPECT_EQ(clash.code(), absl::StatusCode::kAlreadyExists) << clash;
  EXPECT_NE(clash.message().find(alices.name()), absl::string_view::npos) << clash;
  EXPECT_EQ(clash.message().find(bobs.name()), absl::string_view::npos) << clash;
}

TEST_P(ChainApiTenantTest, ChainAndEventsRecordWhoDidWhat) {
  const Chain c = Submit(kAlice, DownloadRequest());
  EXPECT_EQ(c.tenant(), "acme");
  EXPECT_EQ(c.principal(), "alice");
  const Caller carol = testing::TenantUser("acme", "carol");
  ASSERT_TRUE(api_->Cancel(carol, c.name()).ok());
  ASSERT_TRUE(api_->Retry(kAlice, c.name()).ok());

  std::vector<ChainEvent> events = Events(c);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type(), ChainEvent::CHAIN_SUBMITTED);
  EXPECT_EQ(events[0].actor().principal(), "alice");
  EXPECT_EQ(events[0].actor().tenant(), "acme");
  EXPECT_EQ(events[1].type(), ChainEvent::CHAIN_CANCELLED);
  EXPECT_EQ(events[1].actor().principal(), "carol");
  EXPECT_EQ(events[2].type(), ChainEvent::CHAIN_RESUMED);
  EXPECT_EQ(events[2].actor().principal(), "alice");
}

TEST_P(ChainApiTenantTest, ChainsInFlightQuotaRefusesSubmitAndRetryUntilOneEnds) {
  TenantQuotas quotas;
  quotas.max_chains_in_flight = 2;
  Start(quotas);
  const Chain first = Submit(kAlice, DownloadRequest());
  Submit(kAlice, DownloadRequest());
  absl::Status over = api_->Submit(kAlice, DownloadRequest()).status();
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted) << over;
  EXPECT_EQ(ErrorReason(over), "TENANT_QUOTA_EXCEEDED");
  EXPECT_NE(over.message().find("chains_in_flight"), absl::string_view::npos) << over;
  EXPECT_NE(over.message().find("\"acme\""), absl::string_view::npos) << over;
  EXPECT_NE(over.message().find("2 of 2"), absl::string_view::npos) << over;
  // Another tenant has a quota of its own.
  Submit(kBob, DownloadRequest());

  // One ends: room for one more, and a retry of the ended one then waits
  // for room as a submit does.
  ASSERT_TRUE(api_->Cancel(kAlice, first.name()).ok());
  Submit(kAlice, DownloadRequest());
  absl::Status retry = api_->Retry(kAlice, first.name()).status();
  EXPECT_EQ(retry.code(), absl::StatusCode::kResourceExhausted) << retry;
  EXPECT_EQ(ErrorReason(retry), "TENANT_QUOTA_EXCEEDED");
  EXPECT_EQ(api_->Get(kAlice, first.name())->state(), conveyor::v1::CANCELLED);
}

TEST_P(ChainApiTenantTest, StoredBytesQuotaCountsEachTenantsImagesUntilTheyAreFreed) {
  TenantQuotas quotas;
  quotas.max_stored_bytes = 1000;
  Start(quotas);
  const Chain held = Submit(kAlice, InlineRequest(600));
  absl::Status over = api_->Submit(kAlice, InlineRequest(600)).status();
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted) << over;
  EXPECT_EQ(ErrorReason(over), "TENANT_QUOTA_EXCEEDED");
  EXPECT_NE(over.message().find("stored_bytes"), absl::string_view::npos) << over;
  Submit(kBob, InlineRequest(600));

  // Purged, its bytes no longer count.
  ASSERT_TRUE(api_->Cancel(kAlice, held.name()).ok());
  ASSERT_EQ(api_->Purge(kAlice, conveyor::v1::PurgeChainsRequest())->purged_count(), 1);
  Submit(kAlice, InlineRequest(600));
}

TEST_P(ChainApiTenantTest, AnOperatorOfEveryTenantOwnsNoChains) {
  absl::Status s = api_->Submit(testing::SystemAdmin(), DownloadRequest()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_EQ(Listed(testing::SystemAdmin()), std::set<std::string>{});
}

TEST_P(ChainApiTenantTest, SystemStatusDetailsAreForAdminCallers) {
  Submit(kAlice, InlineRequest(300));
  absl::StatusOr<conveyor::v1::SystemStatus> user = api_->SystemStatus(kAlice);
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->stages_size(), static_cast<int>(Stages().size()));
  EXPECT_EQ(user->blob_bytes(), 0);
  EXPECT_TRUE(user->chains_by_state().empty());
  absl::StatusOr<conveyor::v1::SystemStatus> admin = api_->SystemStatus(testing::SystemAdmin());
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_GT(admin->blob_bytes(), 0);
  EXPECT_EQ(admin->chains_by_state().at("PENDING"), 1);
}

}  // namespace
}  // namespace conveyor::orchestrator
