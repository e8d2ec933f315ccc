// ChainApi with a FakeClock, each test on the in-memory store (hermetic)
// and on RedisChainStore with a real redis-server: request limits,
// ListChains paging by bytes, the blob cap, failed-blob retention and
// RetryChain after it. How ChainApi meets Redis itself (stream ids, memory,
// error replies): chain_api_redis_test.cc.
#include "orchestrator/chain_api.h"

#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "orchestrator/blob_sweeper.h"
#include "orchestrator/chain_validator.h"
#include "tests/orchestrator/chain_api_fixture.h"
#include "tests/testing/callers.h"
#include "tests/testing/error_details.h"
#include "tests/testing/store_backend.h"
#include "tests/testing/test_images.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::testing::BadRequestField;
using conveyor::v1::Chain;

TEST_P(ChainApiTest, OversizeUrlIsRefusedByFieldAndSizeWithoutTheValue) {
  conveyor::v1::SubmitChainRequest req = DownloadRequest();
  req.mutable_spec()->mutable_steps(0)->mutable_download()->set_url("https://example.com/" +
                                                                    std::string(8 << 20, 'a'));
  absl::StatusOr<Chain> c = api_->Submit(testing::TenantUser(), req);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadRequestField(c.status()), "spec.steps[0].download.url");
  EXPECT_LT(c.status().message().size(), 120u) << c.status();
  EXPECT_EQ(StoredChains(), 0);  // nothing stored
}

TEST_P(ChainApiTest, UnknownSpecFieldsAreNotStored) {
  conveyor::v1::SubmitChainRequest req = DownloadRequest();
  // Field 99 is unknown to ChainSpec: 1 MiB of it.
  req.mutable_spec()
      ->GetReflection()
      ->MutableUnknownFields(req.mutable_spec())
      ->AddLengthDelimited(99, std::string(1 << 20, 'u'));
  Chain c = Submit(req);
  absl::StatusOr<Chain> got = api_->Get(testing::TenantUser(), c.name());
  ASSERT_TRUE(got.ok());
  EXPECT_LT(got->ByteSizeLong(), 4096u);
}

TEST_P(ChainApiTest, RequestLevelFieldsAreBoundedAndNotEchoed) {
  absl::StatusOr<Chain> g = api_->Get(testing::TenantUser(), "chains/" + std::string(1 << 20, 'a'));
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadRequestField(g.status()), "name");
  EXPECT_LT(g.status().message().size(), 120u);
  EXPECT_EQ(api_->Cancel(testing::TenantUser(), std::string(100, 'z')).status().code(),
            absl::StatusCode::kInvalidArgument);

  conveyor::v1::ListChainsRequest token;
  token.set_page_token(std::string(4096, 'A'));
  EXPECT_EQ(BadRequestField(api_->List(testing::TenantUser(), token).status()), "page_token");
  conveyor::v1::ListChainsRequest garbage;
  garbage.set_page_token("not-a-token");
  EXPECT_EQ(api_->List(testing::TenantUser(), garbage).status().code(),
            absl::StatusCode::kInvalidArgument);
  conveyor::v1::ListChainsRequest labels;
  (*labels.mutable_labels())[std::string(1 << 16, 'k')] = "v";
  absl::Status ls = api_->List(testing::TenantUser(), labels).status();
  EXPECT_EQ(ls.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadRequestField(ls), "labels");
  conveyor::v1::ListChainsRequest time;
  time.mutable_create_time_before()->set_seconds(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(BadRequestField(api_->List(testing::TenantUser(), time).status()),
            "create_time_before");

  conveyor::v1::SubmitChainRequest idem = DownloadRequest();
  idem.set_idempotency_key(std::string(1 << 20, 'k'));
  absl::Status is = api_->Submit(testing::TenantUser(), idem).status();
  EXPECT_EQ(is.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadRequestField(is), "idempotency_key");
  EXPECT_LT(is.message().size(), 120u);
}

// Specs near the largest legal size (~130 KiB each): a page stops before
// its bytes pass the budget, and the tokens still walk every chain once.
TEST_P(ChainApiTest, ListChainsPagesByBytesWithLargeLegalSpecs) {
  constexpr int64_t kBudget = 1 << 20;
  Start({}, kBudget);
  std::set<std::string> submitted;
  for (int i = 0; i < 20; ++i) {
    conveyor::v1::SubmitChainRequest req;
    auto* spec = req.mutable_spec();
    spec->add_steps()->mutable_download()->set_url(
        absl::StrCat("https://example.com/", i, "/", std::string(kMaxUrlBytes - 40, 'u')));
    while (spec->steps_size() < kMaxSteps) {
      spec->add_steps()->mutable_webhook()->set_url(
          absl::StrCat("https://example.com/", std::string(kMaxUrlBytes - 40, 'w')));
    }
    submitted.insert(Submit(req).name());
    clock_.Advance(absl::Milliseconds(1));
  }
  std::set<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    conveyor::v1::ListChainsRequest req;
    req.set_page_size(1000);
    req.set_page_token(token);
    absl::StatusOr<conveyor::v1::ListChainsResponse> page = api_->List(testing::TenantUser(), req);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(static_cast<int64_t>(page->ByteSizeLong()), kBudget);
    EXPECT_GT(page->chains_size(), 0);
    for (const Chain& c : page->chains()) EXPECT_TRUE(listed.insert(c.name()).second) << c.name();
    token = page->next_page_token();
    ++pages;
  } while (!token.empty() && pages < 50);
  EXPECT_EQ(listed, submitted);
  EXPECT_GE(pages, 3);  // 20 x ~130 KiB cannot fit in 1 MiB pages
}

TEST_P(ChainApiTest, SubmitAtTheBlobCapIsResourceExhaustedUntilBlobsAreFreed) {
  RedisChainStoreOptions options;
  options.max_blob_bytes = 1000;
  options.failed_blob_retention = absl::Hours(1);
  Start(options);
  Chain a = Submit(InlineRequest(400));
  Chain b = Submit(InlineRequest(400));
  EXPECT_EQ(BlobBytes(), 800);
  absl::Status full = api_->Submit(testing::TenantUser(), InlineRequest(400)).status();
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_EQ(ErrorReason(full), "BLOB_STORE_FULL");
  // Fits exactly.
  conveyor::v1::SubmitChainRequest fits = InlineRequest(200);
  fits.set_idempotency_key("fits");
  Chain c = Submit(fits);
  EXPECT_EQ(BlobBytes(), 1000);
  // At the cap, a chain that stores nothing yet is refused too: its
  // download would add to the store.
  EXPECT_EQ(ErrorReason(api_->Submit(testing::TenantUser(), DownloadRequest()).status()),
            "BLOB_STORE_FULL");
  // An idempotent replay still answers with its chain.
  absl::StatusOr<Chain> replay = api_->Submit(testing::TenantUser(), fits);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->name(), c.name());
  EXPECT_EQ(StoredChains(), 3);

  ASSERT_TRUE(api_->Cancel(testing::TenantUser(), a.name()).ok());
  EXPECT_EQ(ErrorReason(api_->Submit(testing::TenantUser(), DownloadRequest()).status()),
            "BLOB_STORE_FULL");
  clock_.Advance(absl::Hours(1) + absl::Seconds(1));
  // Submit frees what is due before refusing.
  Submit(DownloadRequest());
  EXPECT_EQ(BlobBytes(), 600);
}

TEST_P(ChainApiTest, FailedChainBlobsAreFreedAfterTheirRetentionRecordStays) {
  RedisChainStoreOptions options;
  options.retention = absl::Hours(24 * 7);
  options.failed_blob_retention = absl::Hours(24);
  Start(options);
  Chain c = Submit(InlineRequest(300));
  const std::string id = ChainIdFromName(c.name());
  RunStep(c, 0, true, std::string(100, 'x'));
  RunStep(c, 1, false);
  EXPECT_EQ(BlobBytes(), 400);
  EXPECT_EQ(api_->Get(testing::TenantUser(), c.name())->state(), conveyor::v1::FAILED);

  clock_.Advance(absl::Hours(23));
  BlobSweeper sweeper(store(), clock_, absl::Seconds(1));
  EXPECT_EQ(sweeper.SweepOnce(), 0);
  EXPECT_EQ(BlobExists(id, 0), 1);
  // The TTL on the blobs is only a backstop, past the sweep.
  if (redis()) {
    EXPECT_GT(RawInt({"TTL", ChainBlobKey(id, 1)}), absl::ToInt64Seconds(absl::Hours(24 * 8)));
  }
  clock_.Advance(absl::Hours(1) + absl::Seconds(1));
  EXPECT_EQ(sweeper.SweepOnce(), 1);
  EXPECT_EQ(BlobExists(id, 0), 0);
  EXPECT_EQ(BlobExists(id, 1), 0);
  EXPECT_EQ(BlobBytes(), 0);
  EXPECT_EQ(sweeper.SweepOnce(), 0);  // nothing twice
  absl::StatusOr<Chain> kept = api_->Get(testing::TenantUser(), c.name());
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->state(), conveyor::v1::FAILED);

  // The inline source is gone and nothing can make it again.
  absl::Status retry = api_->Retry(testing::TenantUser(), c.name()).status();
  EXPECT_EQ(retry.code(), absl::StatusCode::kFailedPrecondition) << retry;
  EXPECT_EQ(ErrorReason(retry), "SOURCE_FREED");
  EXPECT_NE(retry.message().find("inline source"), absl::string_view::npos) << retry;
  EXPECT_EQ(api_->Get(testing::TenantUser(), c.name())->state(),
            conveyor::v1::FAILED);  // unchanged
}

TEST_P(ChainApiTest, RetryAfterBlobsWereFreedResumesFromTheFirstStepWhoseInputIsGone) {
  RedisChainStoreOptions options;
  options.failed_blob_retention = absl::Hours(2);
  Start(options);
  Chain c = Submit(DownloadRequest());
  const std::string id = ChainIdFromName(c.name());
  RunStep(c, 0, true, std::string(50, 'd'));
  RunStep(c, 1, true, std::string(20, 'r'));
  RunStep(c, 2, false);
  EXPECT_EQ(BlobBytes(), 70);
  clock_.Advance(absl::Hours(3));
  ASSERT_EQ(store().FreeExpiredBlobs(clock_.Now(), 10).value_or(-1), 1);

  absl::StatusOr<Chain> r = api_->Retry(testing::TenantUser(), c.name());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state(), conveyor::v1::PENDING);
  // Step 2 (upload) needs step 1's output, which needs step 0's: both gone,
  // so the chain starts over at the download.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r->steps(i).state(), conveyor::v1::PENDING) << i;
  EXPECT_FALSE(r->steps(0).has_output());
  EXPECT_EQ(r->progress_percent(), 0);
  EXPECT_EQ(r->resume_note(),
            "resumed from step 0 (download), not step 2 "
            "(upload): the output of step 1 (resize), "
            "input of step 2 (upload), was freed after the "
            "chain ended (--failed-blob-retention)");
  EXPECT_EQ(LastQueuedStep(id), 0);
  absl::StatusOr<EventBatch> events = store().Events(id, "0", 100, absl::ZeroDuration());
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->events.back().type(), conveyor::v1::ChainEvent::CHAIN_RESUMED);
  EXPECT_EQ(events->events.back().step_index(), 0);
  EXPECT_EQ(api_->Get(testing::TenantUser(), c.name())->resume_note(), r->resume_note());
}

TEST_P(ChainApiTest, RetryWithinTheRetentionKeepsBlobsAndResumesWhereItFailed) {
  RedisChainStoreOptions options;
  options.failed_blob_retention = absl::Hours(2);
  Start(options);
  Chain c = Submit(InlineRequest(300));
  const std::string id = ChainIdFromName(c.name());
  RunStep(c, 0, true, std::string(100, 'x'));
  RunStep(c, 1, false);
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<Chain> r = api_->Retry(testing::TenantUser(), c.name());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps(0).state(), conveyor::v1::SUCCEEDED);
  EXPECT_EQ(r->steps(1).state(), conveyor::v1::PENDING);
  EXPECT_EQ(r->resume_note(), "");
  EXPECT_EQ(LastQueuedStep(id), 1);
  if (redis()) {
    EXPECT_EQ(RawInt({"TTL", ChainBlobKey(id, 1)}), -1);  // persistent again
  }
  // The resumed chain left the free schedule: its images stay.
  clock_.Advance(absl::Hours(5));
  EXPECT_EQ(store().FreeExpiredBlobs(clock_.Now(), 10).value_or(-1), 0);
  EXPECT_EQ(BlobBytes(), 400);
}

INSTANTIATE_TEST_SUITE_P(Stores, ChainApiTest,
                         ::testing::Values(testing::Backend::kMemory, testing::Backend::kRedis),
                         testing::BackendName);

}  // namespace
}  // namespace conveyor::orchestrator
