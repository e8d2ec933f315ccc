// The fixture of the ChainApi unit tests (chain_api_test.cc on both stores,
// chain_api_redis_test.cc on Redis only; one binary): a ChainApi over the
// store a test runs on (tests/testing/store_backend.h), a scheduler on a
// FakeClock, stages that must not be called, and ways to look at what was
// stored that work on either store.
#ifndef CONVEYOR_TESTS_ORCHESTRATOR_CHAIN_API_FIXTURE_H_
#define CONVEYOR_TESTS_ORCHESTRATOR_CHAIN_API_FIXTURE_H_

#include <gtest/gtest.h>

#include <initializer_list>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "orchestrator/chain_api.h"
#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/redis/redis_keys.h"
#include "orchestrator/redis_store_options.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/callers.h"
#include "tests/testing/store_backend.h"
#include "tests/testing/test_images.h"

namespace conveyor::orchestrator {

class ChainApiFixture : public ::testing::Test {
 protected:
  explicit ChainApiFixture(testing::Backend backend) : backend_(backend) {}

  // A fresh store (and, on Redis, a fresh redis-server) with these options.
  void Start(RedisChainStoreOptions store_options = {},
             int64_t max_list_response_bytes = (int64_t{4} << 20) * 15 / 16) {
    api_.reset();
    store_backend_.reset();
    store_backend_ = std::make_unique<testing::StoreBackend>(backend_, clock_, store_options);
    ChainApiOptions options;
    options.max_list_response_bytes = max_list_response_bytes;
    options.max_blob_bytes = store_options.max_blob_bytes;
    options.failed_blob_retention = store_options.failed_blob_retention;
    api_ = std::make_unique<ChainApi>(store(), scheduler_, stages_, clock_, options);
  }
  void SetUp() override { Start(); }

  ChainStore& store() { return store_backend_->store(); }
  bool redis() const { return backend_ == testing::Backend::kRedis; }

  // resize -> resize -> upload on an inline source.
  conveyor::v1::SubmitChainRequest InlineRequest(size_t source_bytes = 200) {
    conveyor::v1::SubmitChainRequest req;
    req.mutable_spec()->add_steps()->mutable_resize()->set_width(8);
    req.mutable_spec()->add_steps()->mutable_resize()->set_width(4);
    req.mutable_spec()->add_steps()->mutable_upload()->set_destination("file:///out");
    req.mutable_source()->set_data(conveyor::testing::PaddedPng(source_bytes));
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
  conveyor::v1::Chain Submit(const conveyor::v1::SubmitChainRequest& req) {
    absl::StatusOr<conveyor::v1::Chain> c = api_->Submit(testing::TenantUser(), req);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : conveyor::v1::Chain();
  }
  // Runs `step` of the chain as the dispatcher would record it: started,
  // then succeeded with `output_bytes` (image steps) or failed for good.
  void RunStep(const conveyor::v1::Chain& chain, int step, bool succeed,
               const std::string& output_bytes = "") {
    const std::string id = ChainIdFromName(chain.name());
    absl::StatusOr<StoredChain> stored = store().Load(id);
    ASSERT_TRUE(stored.ok()) << stored.status();
    ClaimDecision d = scheduler_.OnClaim(stored->chain, step, true);
    ASSERT_EQ(d.action, ClaimDecision::Action::kStart) << d.reason;
    ASSERT_TRUE(store().Apply(stored->chain.version(), d.transition, {}).ok());
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
    const conveyor::v1::Chain& running = d.transition.chain;
    Transition t = scheduler_.OnAttemptResult(running, step, running.steps(step).attempts(), r);
    ApplyExtras extras;
    if (t.effects.output_blob >= 0) extras.output_blob = &output_bytes;
    ASSERT_TRUE(store().Apply(running.version(), t, extras).ok());
  }

  // Redis only: a command on the test's redis-server, its string or integer.
  std::string Raw(std::initializer_list<std::string> argv) {
    auto conn = RedisPool().Acquire();
    absl::StatusOr<RedisValue> r = conn->Command(argv);
    return r.ok() ? r->str : r.status().ToString();
  }
  int64_t RawInt(std::initializer_list<std::string> argv) {
    auto conn = RedisPool().Acquire();
    absl::StatusOr<RedisValue> r = conn->Command(argv);
    return r.ok() ? r->integer : -1;
  }

  // Chains stored: on Redis the size of the all-chains index itself, so a
  // chain half-written (in the index, not listable) counts too.
  int64_t StoredChains() {
    if (redis()) return RawInt({"ZCARD", std::string(kAllIndexKey)});
    ListQuery query;
    query.page_size = 1000;
    absl::StatusOr<ListPage> page = store().List(query);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? static_cast<int64_t>(page->chains.size()) : -1;
  }
  // 1 while blob `blob` of chain `id` is stored, else 0 (Redis: EXISTS).
  int64_t BlobExists(const std::string& id, int blob) {
    if (redis()) return RawInt({"EXISTS", ChainBlobKey(id, blob)});
    absl::StatusOr<std::vector<int>> missing = store().MissingBlobs(id, {blob});
    EXPECT_TRUE(missing.ok()) << missing.status();
    return missing.ok() && missing->empty() ? 1 : 0;
  }
  int64_t BlobBytes() {
    absl::StatusOr<conveyor::v1::SystemStatus> s =
        api_->SystemStatus(testing::SystemAdmin());
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->blob_bytes() : -1;
  }
  // The step of the newest ready entry of `id` (the one queued last). On
  // Redis read from the stream, leaving it; in memory the entries are
  // claimed, so call it once, last.
  int LastQueuedStep(const std::string& id) {
    if (!redis()) {
      absl::StatusOr<std::vector<QueueEntry>> entries =
          store().ClaimReady("probe", 1000, absl::ZeroDuration());
      if (!entries.ok()) return -2;
      int step = -1;
      for (const QueueEntry& e : *entries) {
        if (e.chain_id == id) step = e.step;
      }
      return step;
    }
    auto conn = RedisPool().Acquire();
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
  testing::NoCallsStageClient stages_;
  std::unique_ptr<ChainApi> api_;

 private:
  RedisConnectionPool& RedisPool() {
    EXPECT_TRUE(redis()) << "a raw Redis command on the in-memory store";
    return *store_backend_->redis_pool();
  }

  const testing::Backend backend_;
  std::unique_ptr<testing::StoreBackend> store_backend_;
};

// Each test on the in-memory store (hermetic) and on Redis.
class ChainApiTest : public ChainApiFixture,
                     public ::testing::WithParamInterface<testing::Backend> {
 protected:
  ChainApiTest() : ChainApiFixture(GetParam()) {}
};

// Tests of how ChainApi meets Redis itself: its ids, memory, error replies.
class ChainApiRedisTest : public ChainApiFixture {
 protected:
  ChainApiRedisTest() : ChainApiFixture(testing::Backend::kRedis) {}
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_TESTS_ORCHESTRATOR_CHAIN_API_FIXTURE_H_
