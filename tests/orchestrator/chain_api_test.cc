// ChainApi against a real redis-server, with a FakeClock: request limits,
// ListChains paging by bytes, the blob cap, failed-blob retention and
// RetryChain after it, and how store errors reach callers.
#include "orchestrator/chain_api.h"
#include "tests/testing/callers.h"

#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "orchestrator/blob_sweeper.h"
#include "orchestrator/chain_validator.h"
#include "orchestrator/redis/redis_keys.h"
#include "orchestrator/redis_chain_store.h"
#include "common/status_details.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/error_details.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/test_images.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::testing::SystemAdmin;
using conveyor::testing::TenantUser;

using conveyor::testing::BadRequestField;
using conveyor::testing::PaddedPng;
using conveyor::v1::Chain;

// ChainApi only asks it for health and targets here.
class IdleStageClient : public StageClient {
 public:
  std::shared_ptr<StageCallHandle> Start(StageCall,
                                         absl::AnyInvocable<void(StageReply) &&>) override {
    ADD_FAILURE() << "no stage call expected";
    return nullptr;
  }
  std::string Target(conveyor::v1::StageKind) const override { return "idle"; }
  StageHealth CheckHealth(conveyor::v1::StageKind, absl::Duration) override {
    return {StageHealth::State::kServing, ""};
  }
};

class ChainApiTest : public ::testing::Test {
 protected:
  void Start(RedisChainStoreOptions store_options = {},
             int64_t max_list_response_bytes = (int64_t{4} << 20) * 15 / 16) {
    pool_ = std::make_unique<RedisConnectionPool>(*ParseRedisUrl(redis_.url()), absl::Seconds(1),
                                                  absl::Seconds(5));
    store_ = std::make_unique<RedisChainStore>(*pool_, store_options);
    ASSERT_TRUE(store_->EnsureGroups().ok());
    ChainApiOptions options;
    options.max_list_response_bytes = max_list_response_bytes;
    options.max_blob_bytes = store_options.max_blob_bytes;
    options.failed_blob_retention = store_options.failed_blob_retention;
    api_ = std::make_unique<ChainApi>(*store_, scheduler_, stages_, clock_, options);
  }
  void SetUp() override { Start(); }

  // resize -> resize -> upload on an inline source.
  conveyor::v1::SubmitChainRequest InlineRequest(size_t source_bytes = 200) {
    conveyor::v1::SubmitChainRequest req;
    req.mutable_spec()->add_steps()->mutable_resize()->set_width(8);
    req.mutable_spec()->add_steps()->mutable_resize()->set_width(4);
    req.mutable_spec()->add_steps()->mutable_upload()->set_destination("file:///out");
    req.mutable_source()->set_data(PaddedPng(source_bytes));
    return req;
  }
  // download -> resize -> upload.
  conveyor::v1::SubmitChainRequest DownloadRequest() {
    conveyor::v1::SubmitChainRequest req;
    req.mutable_spec()->add_steps()->mutable_download()->set_url("https://example.com/a.png");
    req.mutable_spec()->add_steps()->mutable_resize()->set_width(4);
    req.mutable_spec()->add_steps()->mutable_upload()->set_destination("file:///out");
    return req;
  }
  Chain Submit(const conveyor::v1::SubmitChainRequest& req) {
    absl::StatusOr<Chain> c = api_->Submit(TenantUser(), req);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : Chain();
  }
  // Runs `step` of the chain as the dispatcher would record it: started,
  // then succeeded with `output_bytes` (image steps) or failed for good.
  void RunStep(const Chain& chain, int step, bool succeed, const std::string& output_bytes = "") {
    const std::string id = ChainIdFromName(chain.name());
    absl::StatusOr<StoredChain> stored = store_->Load(id);
    ASSERT_TRUE(stored.ok()) << stored.status();
    ClaimDecision d = scheduler_.OnClaim(stored->chain, step, true);
    ASSERT_EQ(d.action, ClaimDecision::Action::kStart) << d.reason;
    ASSERT_TRUE(store_->Apply(stored->chain.version(), d.transition, {}).ok());
    AttemptResult r;
    if (succeed) {
      if (ProducesImage(chain.spec().steps(step))) {
        r.output.mutable_image()->set_media_type("image/png");
        r.output.mutable_image()->set_size_bytes(static_cast<int64_t>(output_bytes.size()));
      } else {
        r.output.mutable_stored_object()->set_uri(absl::StrCat("file:///out/", step));
      }
    } else {
      r.status = absl::InvalidArgumentError("the worker refused it");
    }
    const Chain& running = d.transition.chain;
    Transition t = scheduler_.OnAttemptResult(running, step, running.steps(step).attempts(), r);
    ApplyExtras extras;
    if (t.effects.output_blob >= 0) extras.output_blob = &output_bytes;
    ASSERT_TRUE(store_->Apply(running.version(), t, extras).ok());
  }
  std::string Raw(std::initializer_list<std::string> argv) {
    auto conn = pool_->Acquire();
    absl::StatusOr<RedisValue> r = conn->Command(argv);
    return r.ok() ? r->str : r.status().ToString();
  }
  int64_t RawInt(std::initializer_list<std::string> argv) {
    auto conn = pool_->Acquire();
    absl::StatusOr<RedisValue> r = conn->Command(argv);
    return r.ok() ? r->integer : -1;
  }
  int64_t BlobBytes() {
    absl::StatusOr<conveyor::v1::SystemStatus> s = api_->SystemStatus(SystemAdmin());
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->blob_bytes() : -1;
  }
  // The step of the newest ready entry of `id` (the one queued last).
  int LastQueuedStep(const std::string& id) {
    auto conn = pool_->Acquire();
    absl::StatusOr<RedisValue> r =
        conn->Command({"XREVRANGE", ReadyStreamKey(conveyor::v1::PRIORITY_NORMAL), "+", "-"});
    if (!r.ok()) return -2;
    for (const RedisValue& entry : r->elements) {
      const RedisValue& f = entry.elements[1];
      std::string chain, step;
      for (size_t i = 0; i + 1 < f.elements.size(); i += 2) {
        if (f.elements[i].str == "c") chain = f.elements[i + 1].str;
        if (f.elements[i].str == "s") step = f.elements[i + 1].str;
      }
      if (chain == id) return std::stoi(step);
    }
    return -1;
  }

  testing::FakeClock clock_;
  testing::FixedRandom random_;
  Scheduler scheduler_{clock_, random_};
  IdleStageClient stages_;
  conveyor::testing::RedisServer redis_;
  std::unique_ptr<RedisConnectionPool> pool_;
  std::unique_ptr<RedisChainStore> store_;
  std::unique_ptr<ChainApi> api_;
};

TEST_F(ChainApiTest, OversizeUrlIsRefusedByFieldAndSizeWithoutTheValue) {
  conveyor::v1::SubmitChainRequest req = DownloadRequest();
  req.mutable_spec()->mutable_steps(0)->mutable_download()->set_url("https://example.com/" +
                                                                    std::string(8 << 20, 'a'));
  absl::StatusOr<Chain> c = api_->Submit(TenantUser(), req);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadRequestField(c.status()), "spec.steps[0].download.url");
  EXPECT_LT(c.status().message().size(), 120u) << c.status();
  EXPECT_EQ(RawInt({"ZCARD", std::string(kAllIndexKey)}), 0);  // nothing stored
}

TEST_F(ChainApiTest, UnknownSpecFieldsAreNotStored) {
  conveyor::v1::SubmitChainRequest req = DownloadRequest();
  // Field 99 is unknown to ChainSpec: 1 MiB of it.
  req.mutable_spec()
      ->GetReflection()
      ->MutableUnknownFields(req.mutable_spec())
      ->AddLengthDelimited(99, std::string(1 << 20, 'u'));
  Chain c = Submit(req);
  absl::StatusOr<Chain> got = api_->Get(TenantUser(), c.name());
  ASSERT_TRUE(got.ok());
  EXPECT_LT(got->ByteSizeLong(), 4096u);
}

TEST_F(ChainApiTest, RequestLevelFieldsAreBoundedAndNotEchoed) {
  absl::StatusOr<Chain> g = api_->Get(TenantUser(), "chains/" + std::string(1 << 20, 'a'));
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadRequestField(g.status()), "name");
  EXPECT_LT(g.status().message().size(), 120u);
  EXPECT_EQ(api_->Cancel(TenantUser(), std::string(100, 'z')).status().code(),
            absl::StatusCode::kInvalidArgument);

  conveyor::v1::ListChainsRequest token;
  token.set_page_token(std::string(4096, 'A'));
  EXPECT_EQ(BadRequestField(api_->List(TenantUser(), token).status()), "page_token");
  conveyor::v1::ListChainsRequest garbage;
  garbage.set_page_token("not-a-token");
  EXPECT_EQ(api_->List(TenantUser(), garbage).status().code(), absl::StatusCode::kInvalidArgument);
  conveyor::v1::ListChainsRequest labels;
  (*labels.mutable_labels())[std::string(1 << 16, 'k')] = "v";
  absl::Status ls = api_->List(TenantUser(), labels).status();
  EXPECT_EQ(ls.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadRequestField(ls), "labels");
  conveyor::v1::ListChainsRequest time;
  time.mutable_create_time_before()->set_seconds(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(BadRequestField(api_->List(TenantUser(), time).status()), "create_time_before");

  conveyor::v1::SubmitChainRequest idem = DownloadRequest();
  idem.set_idempotency_key(std::string(1 << 20, 'k'));
  absl::Status is = api_->Submit(TenantUser(), idem).status();
  EXPECT_EQ(is.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadRequestField(is), "idempotency_key");
  EXPECT_LT(is.message().size(), 120u);
}

TEST_F(ChainApiTest, BadAfterEventIdIsInvalidArgumentNotARedisError) {
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
      refused = store_->Events(ChainIdFromName(c.name()), bad, 10, absl::ZeroDuration()).status();
    }
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(BadRequestField(refused), "after_event_id") << bad;
    absl::StatusOr<EventBatch> events =
        store_->Events(ChainIdFromName(c.name()), bad, 10, absl::ZeroDuration());
    EXPECT_EQ(events.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  for (const std::string& good :
       std::vector<std::string>{"", "0", "0-0", "1767225600000-3", "18446744073709551615-0"}) {
    conveyor::v1::WatchChainRequest req;
    req.set_name(c.name());
    req.set_after_event_id(good);
    EXPECT_TRUE(ChainApi::ParseWatchRequest(req).ok()) << good;
    EXPECT_TRUE(store_->Events(ChainIdFromName(c.name()), good, 10, absl::ZeroDuration()).ok())
        << good;
  }
}

// Specs near the largest legal size (~130 KiB each): a page stops before
// its bytes pass the budget, and the tokens still walk every chain once.
TEST_F(ChainApiTest, ListChainsPagesByBytesWithLargeLegalSpecs) {
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
    absl::StatusOr<conveyor::v1::ListChainsResponse> page = api_->List(TenantUser(), req);
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

TEST_F(ChainApiTest, SubmitAtTheBlobCapIsResourceExhaustedUntilBlobsAreFreed) {
  RedisChainStoreOptions options;
  options.max_blob_bytes = 1000;
  options.failed_blob_retention = absl::Hours(1);
  Start(options);
  Chain a = Submit(InlineRequest(400));
  Chain b = Submit(InlineRequest(400));
  EXPECT_EQ(BlobBytes(), 800);
  absl::Status full = api_->Submit(TenantUser(), InlineRequest(400)).status();
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_EQ(ErrorReason(full), "BLOB_STORE_FULL");
  // Fits exactly.
  conveyor::v1::SubmitChainRequest fits = InlineRequest(200);
  fits.set_idempotency_key("fits");
  Chain c = Submit(fits);
  EXPECT_EQ(BlobBytes(), 1000);
  // At the cap, a chain that stores nothing yet is refused too: its
  // download would add to the store.
  EXPECT_EQ(ErrorReason(api_->Submit(TenantUser(), DownloadRequest()).status()), "BLOB_STORE_FULL");
  // An idempotent replay still answers with its chain.
  absl::StatusOr<Chain> replay = api_->Submit(TenantUser(), fits);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->name(), c.name());
  EXPECT_EQ(RawInt({"ZCARD", std::string(kAllIndexKey)}), 3);

  ASSERT_TRUE(api_->Cancel(TenantUser(), a.name()).ok());
  EXPECT_EQ(ErrorReason(api_->Submit(TenantUser(), DownloadRequest()).status()), "BLOB_STORE_FULL");
  clock_.Advance(absl::Hours(1) + absl::Seconds(1));
  // Submit frees what is due before refusing.
  Submit(DownloadRequest());
  EXPECT_EQ(BlobBytes(), 600);
}

TEST_F(ChainApiTest, FailedChainBlobsAreFreedAfterTheirRetentionRecordStays) {
  RedisChainStoreOptions options;
  options.retention = absl::Hours(24 * 7);
  options.failed_blob_retention = absl::Hours(24);
  Start(options);
  Chain c = Submit(InlineRequest(300));
  const std::string id = ChainIdFromName(c.name());
  RunStep(c, 0, true, std::string(100, 'x'));
  RunStep(c, 1, false);
  EXPECT_EQ(BlobBytes(), 400);
  EXPECT_EQ(api_->Get(TenantUser(), c.name())->state(), conveyor::v1::FAILED);

  clock_.Advance(absl::Hours(23));
  BlobSweeper sweeper(*store_, clock_, absl::Seconds(1));
  EXPECT_EQ(sweeper.SweepOnce(), 0);
  EXPECT_EQ(RawInt({"EXISTS", ChainBlobKey(id, 0)}), 1);
  // The TTL on the blobs is only a backstop, past the sweep.
  EXPECT_GT(RawInt({"TTL", ChainBlobKey(id, 1)}), absl::ToInt64Seconds(absl::Hours(24 * 8)));
  clock_.Advance(absl::Hours(1) + absl::Seconds(1));
  EXPECT_EQ(sweeper.SweepOnce(), 1);
  EXPECT_EQ(RawInt({"EXISTS", ChainBlobKey(id, 0)}), 0);
  EXPECT_EQ(RawInt({"EXISTS", ChainBlobKey(id, 1)}), 0);
  EXPECT_EQ(BlobBytes(), 0);
  EXPECT_EQ(sweeper.SweepOnce(), 0);  // nothing twice
  absl::StatusOr<Chain> kept = api_->Get(TenantUser(), c.name());
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->state(), conveyor::v1::FAILED);

  // The inline source is gone and nothing can make it again.
  absl::Status retry = api_->Retry(TenantUser(), c.name()).status();
  EXPECT_EQ(retry.code(), absl::StatusCode::kFailedPrecondition) << retry;
  EXPECT_EQ(ErrorReason(retry), "SOURCE_FREED");
  EXPECT_NE(retry.message().find("inline source"), absl::string_view::npos) << retry;
  EXPECT_EQ(api_->Get(TenantUser(), c.name())->state(), conveyor::v1::FAILED);  // unchanged
}

TEST_F(ChainApiTest, RetryAfterBlobsWereFreedResumesFromTheFirstStepWhoseInputIsGone) {
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
  ASSERT_EQ(store_->FreeExpiredBlobs(clock_.Now(), 10).value_or(-1), 1);

  absl::StatusOr<Chain> r = api_->Retry(TenantUser(), c.name());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state(), conveyor::v1::PENDING);
  // Step 2 (upload) needs step 1's output, which needs step 0's: both gone,
  // so the chain starts over at the download.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r->steps(i).state(), conveyor::v1::PENDING) << i;
  EXPECT_FALSE(r->steps(0).has_output());
  EXPECT_EQ(r->progress_percent(), 0);
  EXPECT_EQ(r->resume_note(),
            "resumed from step 0 (download), not step 2 (upload): the output of step 1 (resize), "
            "input of step 2 (upload), was freed after the chain ended (--failed-blob-retention)");
  EXPECT_EQ(LastQueuedStep(id), 0);
  absl::StatusOr<EventBatch> events = store_->Events(id, "0", 100, absl::ZeroDuration());
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->events.back().type(), conveyor::v1::ChainEvent::CHAIN_RESUMED);
  EXPECT_EQ(events->events.back().step_index(), 0);
  EXPECT_EQ(api_->Get(TenantUser(), c.name())->resume_note(), r->resume_note());
}

TEST_F(ChainApiTest, RetryWithinTheRetentionKeepsBlobsAndResumesWhereItFailed) {
  RedisChainStoreOptions options;
  options.failed_blob_retention = absl::Hours(2);
  Start(options);
  Chain c = Submit(InlineRequest(300));
  const std::string id = ChainIdFromName(c.name());
  RunStep(c, 0, true, std::string(100, 'x'));
  RunStep(c, 1, false);
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<Chain> r = api_->Retry(TenantUser(), c.name());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps(0).state(), conveyor::v1::SUCCEEDED);
  EXPECT_EQ(r->steps(1).state(), conveyor::v1::PENDING);
  EXPECT_EQ(r->resume_note(), "");
  EXPECT_EQ(LastQueuedStep(id), 1);
  EXPECT_EQ(RawInt({"TTL", ChainBlobKey(id, 1)}), -1);  // persistent again
  // The resumed chain left the free schedule: its images stay.
  clock_.Advance(absl::Hours(5));
  EXPECT_EQ(store_->FreeExpiredBlobs(clock_.Now(), 10).value_or(-1), 0);
  EXPECT_EQ(BlobBytes(), 400);
}

TEST_F(ChainApiTest, RetryResumesAtAWebhookWhenOnlyALaterStepsInputIsKept) {
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
  absl::StatusOr<Chain> r = api_->Retry(TenantUser(), c.name());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps(0).state(), conveyor::v1::PENDING);
  EXPECT_EQ(LastQueuedStep(ChainIdFromName(c.name())), 0);
  EXPECT_NE(r->resume_note().find("resumed from step 0 (resize), not step 1 (webhook)"),
            std::string::npos)
      << r->resume_note();
}

TEST_F(ChainApiTest, SystemStatusReportsRedisMemoryAndBlobBytes) {
  Submit(InlineRequest(500));
  absl::StatusOr<conveyor::v1::SystemStatus> s = api_->SystemStatus(SystemAdmin());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->blob_bytes(), 500);
  EXPECT_EQ(s->max_blob_bytes(), int64_t{512} << 20);
  EXPECT_GT(s->redis_used_memory_bytes(), 0);
  EXPECT_EQ(s->redis_max_memory_bytes(), 0);  // the test server sets no maxmemory
  ASSERT_EQ(Raw({"CONFIG", "SET", "maxmemory", "100mb"}), "OK");
  EXPECT_EQ(api_->SystemStatus(SystemAdmin())->redis_max_memory_bytes(), 100 << 20);
}

TEST_F(ChainApiTest, RedisOutOfMemoryIsResourceExhaustedWithoutTheRedisText) {
  ASSERT_EQ(Raw({"CONFIG", "SET", "maxmemory", "1"}), "OK");
  absl::Status s = api_->Submit(TenantUser(), InlineRequest()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(ErrorReason(s), "STORE_OUT_OF_MEMORY");
  EXPECT_EQ(s.message().find("user_script"), absl::string_view::npos) << s;
  ASSERT_EQ(Raw({"CONFIG", "SET", "maxmemory", "0"}), "OK");
  EXPECT_EQ(RawInt({"ZCARD", std::string(kAllIndexKey)}), 0);  // nothing half-written
  EXPECT_TRUE(api_->Submit(TenantUser(), InlineRequest()).ok());
}

TEST_F(ChainApiTest, OtherRedisErrorsAreInternalNamingOnlyTheErrorClass) {
  Submit(DownloadRequest());
  ASSERT_EQ(Raw({"SET", std::string(kAllIndexKey), "not a zset"}), "OK");
  absl::Status s = api_->List(TenantUser(), conveyor::v1::ListChainsRequest()).status();
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
