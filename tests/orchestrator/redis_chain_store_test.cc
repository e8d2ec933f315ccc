// RedisChainStore against a real redis-server on a free loopback port.
#include "orchestrator/redis_chain_store.h"

#include <gtest/gtest.h>

#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "orchestrator/redis/redis_keys.h"
#include "orchestrator/scheduler.h"
#include "common/status_details.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::ChainSpec;

ChainSpec Spec(conveyor::v1::Priority priority = conveyor::v1::PRIORITY_NORMAL) {
  ChainSpec spec;
  spec.add_steps()->mutable_download()->set_url("https://example.com/a.jpg");
  spec.add_steps()->mutable_resize()->set_width(10);
  spec.set_priority(priority);
  (*spec.mutable_labels())["team"] = "a";
  return spec;
}

class RedisChainStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = *ParseRedisUrl(redis_.url());
    pool_ = std::make_unique<RedisConnectionPool>(endpoint_, absl::Seconds(1), absl::Seconds(5));
    store_ = std::make_unique<RedisChainStore>(*pool_, RedisChainStoreOptions{absl::Hours(1)});
    ASSERT_TRUE(store_->EnsureGroups().ok());
  }
  Chain SubmitNew(const std::string& id, const ChainSpec& spec = Spec()) {
    Transition t = scheduler_.Submit(spec, id, "", absl::nullopt);
    absl::StatusOr<SubmitOutcome> out = store_->Submit(t, "hash", nullptr);
    EXPECT_TRUE(out.ok()) << out.status();
    return t.chain;
  }
  int64_t Exists(const std::string& key) {
    auto conn = pool_->Acquire();
    return conn->Command({"EXISTS", key})->integer;
  }
  int64_t Ttl(const std::string& key) {
    auto conn = pool_->Acquire();
    return conn->Command({"TTL", key})->integer;
  }

  testing::FakeClock clock_;
  testing::FixedRandom random_;
  Scheduler scheduler_{clock_, random_};
  conveyor::testing::RedisServer redis_;
  RedisEndpoint endpoint_;
  std::unique_ptr<RedisConnectionPool> pool_;
  std::unique_ptr<RedisChainStore> store_;
};

TEST(RedisUrlTest, ParsesPasswordAndDatabase) {
  absl::StatusOr<RedisEndpoint> e = ParseRedisUrl("redis://:s3cret@10.0.0.5:6380/3");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "10.0.0.5");
  EXPECT_EQ(e->port, 6380);
  EXPECT_EQ(e->password, "s3cret");
  EXPECT_EQ(e->db, 3);
  absl::StatusOr<RedisEndpoint> u = ParseRedisUrl("redis://user:pw@localhost:1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->user, "user");
  EXPECT_EQ(u->password, "pw");
  EXPECT_EQ(ParseRedisUrl("http://x:1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisUrl("redis://x:99999").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisUrl("redis://x:1/abc").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RedisChainStoreTest, SubmitStoresChainIndexesEventAndQueuesStepZero) {
  Chain c = SubmitNew("c1");
  absl::StatusOr<StoredChain> loaded = store_->Load("c1");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->chain.name(), "chains/c1");
  EXPECT_EQ(loaded->queue_token, 1);
  absl::StatusOr<EventBatch> events = store_->Events("c1", "0", 10, absl::ZeroDuration());
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->events.size(), 1u);
  EXPECT_EQ(events->events[0].type(), conveyor::v1::ChainEvent::CHAIN_SUBMITTED);
  EXPECT_FALSE(events->events[0].event_id().empty());
  absl::StatusOr<std::vector<QueueEntry>> entries =
      store_->ClaimReady("r1", 10, absl::Milliseconds(10));
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].chain_id, "c1");
  EXPECT_EQ((*entries)[0].step, 0);
  EXPECT_EQ((*entries)[0].token, 1);
  EXPECT_EQ((*entries)[0].kind, conveyor::v1::STAGE_KIND_DOWNLOAD);
  EXPECT_EQ(store_->Load("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RedisChainStoreTest, IdempotentSubmit) {
  Transition first = scheduler_.Submit(Spec(), "c1", "key-1", absl::nullopt);
  ASSERT_TRUE(store_->Submit(first, "h1", nullptr).ok());
  Transition again = scheduler_.Submit(Spec(), "c2", "key-1", absl::nullopt);
  absl::StatusOr<SubmitOutcome> same = store_->Submit(again, "h1", nullptr);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->existing);
  EXPECT_EQ(same->chain.name(), "chains/c1");
  EXPECT_EQ(Exists(ChainMetaKey("c2")), 0);
  EXPECT_EQ(store_->Submit(again, "h2", nullptr).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(RedisChainStoreTest, StaleWriterGetsDistinctErrorAndChangesNothing) {
  Chain c = SubmitNew("c1");
  ClaimDecision d = scheduler_.OnClaim(c, 0, true);
  ASSERT_TRUE(store_->Apply(1, d.transition, {}).ok());
  absl::Status stale = store_->Apply(1, d.transition, {});
  EXPECT_TRUE(IsStaleVersion(stale)) << stale;
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store_->Load("c1")->chain.version(), 2);
  Transition missing = d.transition;
  missing.chain.set_name("chains/zz");
  EXPECT_EQ(store_->Apply(1, missing, {}).code(), absl::StatusCode::kNotFound);
}

TEST_F(RedisChainStoreTest, CompletionCheckpointsBlobAcksAndQueuesNext) {
  Chain c = SubmitNew("c1");
  std::vector<QueueEntry> entries = *store_->ClaimReady("r1", 10, absl::Milliseconds(10));
  ASSERT_EQ(entries.size(), 1u);
  ClaimDecision d = scheduler_.OnClaim(c, 0, true);
  ASSERT_TRUE(store_->Apply(1, d.transition, {}).ok());
  AttemptResult ok;
  Transition done = scheduler_.OnAttemptResult(d.transition.chain, 0, 1, ok);
  std::string bytes = "image-bytes";
  ApplyExtras extras;
  extras.ack = &entries[0];
  extras.output_blob = &bytes;
  ASSERT_TRUE(store_->Apply(2, done, extras).ok());
  auto loaded = store_->LoadWithBlob("c1", 1);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->second.value_or(""), "image-bytes");
  EXPECT_EQ(loaded->first.queue_token, 3);
  std::vector<QueueEntry> next = *store_->ClaimReady("r1", 10, absl::Milliseconds(10));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].step, 1);
  EXPECT_EQ(next[0].token, 3);
  // The first entry is acknowledged: nothing left to reclaim but the new one.
  std::vector<QueueEntry> reclaimed = *store_->Reclaim("r2", absl::ZeroDuration(), 10);
  ASSERT_EQ(reclaimed.size(), 1u);
  EXPECT_EQ(reclaimed[0].id, next[0].id);
  EXPECT_TRUE(reclaimed[0].reclaimed);
}

TEST_F(RedisChainStoreTest, SucceededChainDropsBlobsAndExpires) {
  ChainSpec spec;
  spec.add_steps()->mutable_resize()->set_width(10);
  Transition t = scheduler_.Submit(spec, "c1", "", conveyor::v1::ImageInfo());
  std::string src = "source";
  ASSERT_TRUE(store_->Submit(t, "h", &src).ok());
  EXPECT_EQ(Exists(ChainBlobKey("c1", 0)), 1);
  ClaimDecision d = scheduler_.OnClaim(t.chain, 0, true);
  ASSERT_TRUE(store_->Apply(1, d.transition, {}).ok());
  Transition done = scheduler_.OnAttemptResult(d.transition.chain, 0, 1, AttemptResult{});
  std::string out = "out";
  ApplyExtras extras;
  extras.output_blob = &out;
  ASSERT_TRUE(store_->Apply(2, done, extras).ok());
  EXPECT_EQ(Exists(ChainBlobKey("c1", 0)), 0);
  EXPECT_EQ(Exists(ChainBlobKey("c1", 1)), 0);
  EXPECT_GT(Ttl(ChainMetaKey("c1")), 3000);
  EXPECT_GT(Ttl(ChainEventsKey("c1")), 3000);
}

TEST_F(RedisChainStoreTest, DelayedRetryIsPromotedWhenDue) {
  Chain c = SubmitNew("c1");
  store_->ClaimReady("r1", 10, absl::Milliseconds(10)).IgnoreError();
  ClaimDecision d = scheduler_.OnClaim(c, 0, true);
  ASSERT_TRUE(store_->Apply(1, d.transition, {}).ok());
  AttemptResult failed;
  failed.status = absl::UnavailableError("down");
  Transition retry = scheduler_.OnAttemptResult(d.transition.chain, 0, 1, failed);
  ASSERT_TRUE(retry.effects.retry_at.has_value());
  ASSERT_TRUE(store_->Apply(2, retry, {}).ok());
  absl::StatusOr<absl::optional<absl::Time>> early = store_->PromoteDue(clock_.Now());
  ASSERT_TRUE(early.ok());
  ASSERT_TRUE(early->has_value());
  EXPECT_EQ(absl::ToUnixMillis(**early), absl::ToUnixMillis(*retry.effects.retry_at));
  EXPECT_TRUE(store_->ClaimReady("r1", 10, absl::Milliseconds(10))->empty());
  absl::StatusOr<absl::optional<absl::Time>> later =
      store_->PromoteDue(*retry.effects.retry_at + absl::Milliseconds(1));
  ASSERT_TRUE(later.ok());
  EXPECT_FALSE(later->has_value());
  std::vector<QueueEntry> entries = *store_->ClaimReady("r1", 10, absl::Milliseconds(10));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].step, 0);
  EXPECT_EQ(entries[0].token, 3);
}

TEST_F(RedisChainStoreTest, ClaimReturnsHighPriorityFirstButKeepsLowInEveryBatch) {
  for (int i = 0; i < 5; ++i) SubmitNew("low" + std::to_string(i), Spec(conveyor::v1::PRIORITY_LOW));
  for (int i = 0; i < 5; ++i) SubmitNew("high" + std::to_string(i), Spec(conveyor::v1::PRIORITY_HIGH));
  std::vector<QueueEntry> entries = *store_->ClaimReady("r1", 2, absl::Milliseconds(10));
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].priority, conveyor::v1::PRIORITY_HIGH);
  EXPECT_EQ(entries[1].priority, conveyor::v1::PRIORITY_HIGH);
  EXPECT_EQ(entries[2].priority, conveyor::v1::PRIORITY_LOW);
  EXPECT_EQ(entries[3].priority, conveyor::v1::PRIORITY_LOW);
}

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
    Chain c = SubmitNew(id);
    for (int i = 0; i <= step; ++i) {
      ClaimDecision d = scheduler_.OnClaim(c, i, true);
      ASSERT_TRUE(store_->Apply(c.version(), d.transition, {}).ok());
      c = d.transition.chain;
      AttemptResult r;
      if (i == step) {
        r.status = error;
        r.permanent = true;
      }
      Transition t = scheduler_.OnAttemptResult(c, i, 1, r);
      ASSERT_TRUE(store_->Apply(c.version(), t, {}).ok());
      c = t.chain;
    }
    ASSERT_EQ(c.state(), conveyor::v1::FAILED);
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

TEST(RedisAuthTest, PasswordAndDatabaseFromTheUrl) {
  conveyor::testing::TempDir dir;
  const int port = conveyor::testing::PickFreePort();
  conveyor::testing::ScopedProcess redis(
      {"/usr/bin/redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save",
       "", "--appendonly", "no", "--dir", dir.path(), "--requirepass", "s3cret"},
      dir.path() + "/redis.log");
  const std::string base = absl::StrCat("127.0.0.1:", port);
  RedisConnection authed(*ParseRedisUrl(absl::StrCat("redis://:s3cret@", base, "/2")),
                         absl::Seconds(1), absl::Seconds(1));
  absl::Status connected = absl::UnavailableError("not tried");
  for (int i = 0; i < 200 && !connected.ok(); ++i) {  // until redis listens
    connected = authed.Connect();
    if (!connected.ok()) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(connected.ok()) << connected;
  ASSERT_TRUE(authed.Command({"SET", "k", "v"}).ok());
  RedisConnection db0(*ParseRedisUrl(absl::StrCat("redis://:s3cret@", base)), absl::Seconds(1),
                      absl::Seconds(1));
  EXPECT_TRUE(db0.Command({"GET", "k"})->is_nil());
  RedisConnection db2(*ParseRedisUrl(absl::StrCat("redis://:s3cret@", base, "/2")),
                      absl::Seconds(1), absl::Seconds(1));
  EXPECT_EQ(db2.Command({"GET", "k"})->str, "v");
  RedisConnection wrong(*ParseRedisUrl(absl::StrCat("redis://:nope@", base)), absl::Seconds(1),
                        absl::Seconds(1));
  EXPECT_EQ(wrong.Connect().code(), absl::StatusCode::kUnavailable);
}

TEST_F(RedisChainStoreTest, CreatingATakenChainIdIsAlreadyExistsNotInternal) {
  Transition t = scheduler_.Submit(Spec(), "c1", "", absl::nullopt);
  ASSERT_TRUE(store_->Submit(t, "h", nullptr).ok());
  absl::Status again = store_->Submit(t, "h", nullptr).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists) << again;
  EXPECT_EQ(ErrorReason(again), "CHAIN_EXISTS");
}

int64_t BlobBytes(RedisConnectionPool& pool) {
  auto conn = pool.Acquire();
  absl::StatusOr<RedisValue> r = conn->Command({"GET", std::string(kBlobBytesKey)});
  int64_t n = 0;
  if (r.ok() && !r->is_nil()) absl::SimpleAtoi(r->str, &n);
  return n;
}

// cv:{q}:blob_bytes follows every write and delete of a blob, in the scripts.
TEST_F(RedisChainStoreTest, BlobBytesFollowEveryBlobWriteAndDelete) {
  ChainSpec spec;
  spec.add_steps()->mutable_resize()->set_width(10);
  spec.add_steps()->mutable_upload()->set_destination("file:///out");
  conveyor::v1::ImageInfo info;
  info.set_size_bytes(300);
  const std::string source(300, 's');

  // Succeeds: source and output are deleted.
  Transition t = scheduler_.Submit(spec, "ok", "", info);
  ASSERT_TRUE(store_->Submit(t, "h", &source).ok());
  EXPECT_EQ(BlobBytes(*pool_), 300);
  ClaimDecision d = scheduler_.OnClaim(t.chain, 0, true);
  ASSERT_TRUE(store_->Apply(1, d.transition, {}).ok());
  AttemptResult r;
  r.output.mutable_image()->set_size_bytes(120);
  Transition done = scheduler_.OnAttemptResult(d.transition.chain, 0, 1, r);
  const std::string out(120, 'o');
  ApplyExtras extras;
  extras.output_blob = &out;
  ASSERT_TRUE(store_->Apply(2, done, extras).ok());
  EXPECT_EQ(BlobBytes(*pool_), 420);
  // Writing the same blob again replaces its size, it does not add.
  ASSERT_TRUE(store_->Apply(3, done, extras).ok());
  EXPECT_EQ(BlobBytes(*pool_), 420);
  ClaimDecision d2 = scheduler_.OnClaim(done.chain, 1, true);
  ASSERT_TRUE(store_->Apply(3, d2.transition, {}).ok());
  AttemptResult uploaded;
  uploaded.output.mutable_stored_object()->set_uri("file:///out/x");
  Transition finished = scheduler_.OnAttemptResult(d2.transition.chain, 1, 1, uploaded);
  ASSERT_EQ(finished.chain.state(), conveyor::v1::SUCCEEDED);
  ASSERT_TRUE(store_->Apply(4, finished, {}).ok());
  EXPECT_EQ(BlobBytes(*pool_), 0);

  // Cancelled, then purged: its source goes with it.
  Transition c = scheduler_.Submit(spec, "gone", "", info);
  ASSERT_TRUE(store_->Submit(c, "h", &source).ok());
  EXPECT_EQ(BlobBytes(*pool_), 300);
  absl::StatusOr<Transition> cancel = scheduler_.Cancel(c.chain);
  ASSERT_TRUE(store_->Apply(1, *cancel, {}).ok());
  clock_.Advance(absl::Seconds(5));
  absl::StatusOr<PurgeOutcome> purged = store_->Purge(conveyor::v1::CANCELLED, clock_.Now(), "", false);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(purged->count, 1);
  EXPECT_EQ(BlobBytes(*pool_), 0);
  auto conn = pool_->Acquire();
  EXPECT_EQ(conn->Command({"ZCARD", std::string(kBlobExpiryKey)})->integer, 0);
}

TEST_F(RedisChainStoreTest, RequiredBlobThatIsGoneRefusesTheWholeTransition) {
  conveyor::v1::ImageInfo info;
  ChainSpec spec;
  spec.add_steps()->mutable_resize()->set_width(10);
  const std::string source(10, 's');
  Transition t = scheduler_.Submit(spec, "c1", "", info);
  ASSERT_TRUE(store_->Submit(t, "h", &source).ok());
  absl::StatusOr<Transition> cancel = scheduler_.Cancel(t.chain);
  ApplyExtras extras;
  extras.required_blobs = {0, 1};  // 1 never existed
  absl::Status s = store_->Apply(1, *cancel, extras);
  EXPECT_TRUE(IsBlobGone(s)) << s;
  EXPECT_EQ(store_->Load("c1")->chain.version(), 1);  // nothing applied
  extras.required_blobs = {0};
  EXPECT_TRUE(store_->Apply(1, *cancel, extras).ok());
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

TEST_F(RedisChainStoreTest, UnreachableRedisIsUnavailable) {
  RedisEndpoint dead = endpoint_;
  dead.port = conveyor::testing::PickFreePort();
  RedisConnectionPool pool(dead, absl::Milliseconds(200), absl::Milliseconds(200));
  RedisChainStore store(pool, {});
  Transition t = scheduler_.Submit(Spec(), "x", "", absl::nullopt);
  EXPECT_EQ(store.Submit(t, "h", nullptr).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.Load("x").status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace conveyor::orchestrator
