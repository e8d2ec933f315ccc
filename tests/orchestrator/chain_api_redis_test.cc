// ChainApi against a real redis-server where the test is about Redis
// itself: stream ids as watch cursors, a blob deleted by hand, Redis memory
// in SystemStatus, OOM and other error replies reaching callers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/status_details.h"
#include "orchestrator/chain_api.h"
#include "tests/orchestrator/chain_api_fixture.h"
#include "tests/testing/callers.h"
#include "tests/testing/error_details.h"
#include "tests/testing/store_backend.h"
#include "tests/testing/test_images.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::testing::BadRequestField;
using conveyor::testing::PaddedPng;
using conveyor::v1::Chain;

TEST_F(ChainApiRedisTest, BadAfterEventIdIsInvalidArgumentNotARedisError) {
  Chain c = Submit(DownloadRequest());
  for (const std::string& bad :
       std::vector<std::string>{"abc", "1-", "-1", "1-2-3", "18446744073709551616-0", "$", ">", "+",
                                "1 2", std::string(100, '1')}) {
    conveyor::v1::WatchChainRequest req;
    req.set_name(c.name());
    req.set_after_event_id(bad);
    // The API bounds the id; the store, whose cursor it is, refuses any it
    // cannot have given out, before Redis would answer "ERR Invalid stream ID".
    absl::Status refused = ChainApi::ParseWatchRequest(req).status();
    if (refused.ok()) {
      refused = store().Events(ChainIdFromName(c.name()), bad, 10, absl::ZeroDuration()).status();
    }
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(BadRequestField(refused), "after_event_id") << bad;
    absl::StatusOr<EventBatch> events =
        store().Events(ChainIdFromName(c.name()), bad, 10, absl::ZeroDuration());
    EXPECT_EQ(events.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  for (const std::string& good :
       std::vector<std::string>{"", "0", "0-0", "1767225600000-3", "18446744073709551615-0"}) {
    conveyor::v1::WatchChainRequest req;
    req.set_name(c.name());
    req.set_after_event_id(good);
    EXPECT_TRUE(ChainApi::ParseWatchRequest(req).ok()) << good;
    EXPECT_TRUE(store().Events(ChainIdFromName(c.name()), good, 10, absl::ZeroDuration()).ok())
        << good;
  }
}

TEST_F(ChainApiRedisTest, RetryResumesAtAWebhookWhenOnlyALaterStepsInputIsKept) {
  RedisChainStoreOptions options;
  options.failed_blob_retention = absl::Hours(1);
  Start(options);
  // resize -> webhook -> upload: failing at the webhook, the upload still
  // needs the resize output; with it freed the resize runs again.
  conveyor::v1::SubmitChainRequest req;
  req.mutable_spec()->add_steps()->mutable_resize()->set_width(8);
  req.mutable_spec()->add_steps()->mutable_webhook()->set_url("https://example.com/hook");
  req.mutable_spec()->add_steps()->mutable_upload()->set_destination("file:///out");
  req.mutable_source()->set_data(PaddedPng());
  Chain c = Submit(req);
  RunStep(c, 0, true, std::string(10, 'x'));
  RunStep(c, 1, false);
  // Only the resize output is freed (e.g. by hand): the source remains.
  ASSERT_EQ(Raw({"DEL", ChainBlobKey(ChainIdFromName(c.name()), 1)}), "");
  absl::StatusOr<Chain> r = api_->Retry(testing::TenantUser(), c.name());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps(0).state(), conveyor::v1::PENDING);
  EXPECT_EQ(LastQueuedStep(ChainIdFromName(c.name())), 0);
  EXPECT_NE(r->resume_note().find("resumed from step 0 (resize), not step 1 (webhook)"),
            std::string::npos)
      << r->resume_note();
}

TEST_F(ChainApiRedisTest, SystemStatusReportsRedisMemoryAndBlobBytes) {
  Submit(InlineRequest(500));
  absl::StatusOr<conveyor::v1::SystemStatus> s = api_->SystemStatus(testing::SystemAdmin());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->blob_bytes(), 500);
  EXPECT_EQ(s->max_blob_bytes(), int64_t{512} << 20);
  EXPECT_GT(s->redis_used_memory_bytes(), 0);
  EXPECT_EQ(s->redis_max_memory_bytes(),
            0);  // the test server sets no maxmemory
  ASSERT_EQ(Raw({"CONFIG", "SET", "maxmemory", "100mb"}), "OK");
  EXPECT_EQ(api_->SystemStatus(testing::SystemAdmin())->redis_max_memory_bytes(), 100 << 20);
}

TEST_F(ChainApiRedisTest, RedisOutOfMemoryIsResourceExhaustedWithoutTheRedisText) {
  ASSERT_EQ(Raw({"CONFIG", "SET", "maxmemory", "1"}), "OK");
  absl::Status s = api_->Submit(testing::TenantUser(), InlineRequest()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(ErrorReason(s), "STORE_OUT_OF_MEMORY");
  EXPECT_EQ(s.message().find("user_script"), absl::string_view::npos) << s;
  ASSERT_EQ(Raw({"CONFIG", "SET", "maxmemory", "0"}), "OK");
  EXPECT_EQ(RawInt({"ZCARD", std::string(kAllIndexKey)}),
            0);  // nothing half-written
  EXPECT_TRUE(api_->Submit(testing::TenantUser(), InlineRequest()).ok());
}

TEST_F(ChainApiRedisTest, OtherRedisErrorsAreInternalNamingOnlyTheErrorClass) {
  Submit(DownloadRequest());
  ASSERT_EQ(Raw({"SET", std::string(kAllIndexKey), "not a zset"}), "OK");
  absl::Status s = api_->List(testing::TenantUser(), conveyor::v1::ListChainsRequest()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_EQ(s.message(), "the chain store failed (Redis WRONGTYPE); see the orchestrator log");
}

TEST(PublicStoreErrorTest, MapsRedisReplyClasses) {
  EXPECT_EQ(ChainApi::PublicStoreError(absl::InternalError("LOADING Redis is loading")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(ChainApi::PublicStoreError(absl::InternalError("READONLY You can't write")).code(),
            absl::StatusCode::kUnavailable);
  // Statuses that are not Redis replies pass unchanged.
  const absl::Status own = absl::InternalError("HMGET: unexpected reply");
  EXPECT_EQ(ChainApi::PublicStoreError(own), own);
  const absl::Status down = absl::UnavailableError("redis: connection refused");
  EXPECT_EQ(ChainApi::PublicStoreError(down), down);
  EXPECT_TRUE(ChainApi::PublicStoreError(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace conveyor::orchestrator
