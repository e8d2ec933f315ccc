// conveyor-bulk-recovery-bench: what the stage / error-reason filters cost
// without an index of their own (issue 9, item 5). Not a test; run by hand,
// figures in docs/orchestrator.md.
//
// Stores N chains (download -> resize -> filter) in a private redis-server
// through RedisChainStore: 70 % SUCCEEDED, 10 % FAILED at resize with
// UNAVAILABLE, 10 % FAILED at resize with INTERNAL, 10 % FAILED at download
// with ErrorInfo reason DESTINATION_BLOCKED. Then times ListChains pages with
// the post-filters, the worst case (a filter nothing matches, so one call
// scans the whole index), and RetryChains (dry run, then for real) through
// ChainApi.
// Usage: conveyor-bulk-recovery-bench [chains=10000]
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/status_details.h"
#include "orchestrator/chain_api.h"
#include "orchestrator/redis_chain_store.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/callers.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/run_steps.h"

namespace conveyor::orchestrator {
namespace {

// ChainApi's bulk methods never call a stage.
class NoStages : public StageClient {
 public:
  std::shared_ptr<StageCallHandle> Start(StageCall,
                                         absl::AnyInvocable<void(StageReply) &&> done) override {
    StageReply reply;
    reply.status = absl::UnimplementedError("no stages in this benchmark");
    std::move(done)(std::move(reply));
    return nullptr;
  }
  std::string Target(conveyor::v1::StageKind) const override { return ""; }
  StageHealth CheckHealth(conveyor::v1::StageKind, absl::Duration) override {
    return {StageHealth::State::kUnreachable, "no stages here"};
  }
};

double Ms(absl::Time start) { return absl::ToDoubleMilliseconds(absl::Now() - start); }

int Run(int chains) {
  conveyor::testing::RedisServer redis;
  RedisConnectionPool pool(*ParseRedisUrl(redis.url()), absl::Seconds(1), absl::Seconds(30));
  RedisChainStore store(pool, {});
  testing::FakeClock clock;
  testing::FixedRandom random;
  Scheduler scheduler(clock, random);
  NoStages stages;
  ChainApi api(store, scheduler, stages, clock, {});
  conveyor::v1::ChainSpec spec;
  spec.add_steps()->mutable_download()->set_url("https://example.com/a.jpg");
  spec.add_steps()->mutable_resize()->set_width(100);
  spec.add_steps()->mutable_filter()->add_ops()->mutable_grayscale();
  for (auto& step : *spec.mutable_steps()) step.mutable_retry()->set_max_attempts(1);
  (*spec.mutable_labels())["team"] = "web";

  const absl::Time fill_start = absl::Now();
  int failed = 0;
  for (int i = 0; i < chains; ++i) {
    clock.Advance(absl::Milliseconds(1));
    Transition t = scheduler.Submit(spec, absl::StrFormat("%032x", i), "", absl::nullopt);
    if (!store.Submit(t, "h", nullptr).ok()) {
      std::fprintf(stderr, "submit failed\n");
      return 1;
    }
    int fail_step = -1;
    absl::Status error;
    switch (i % 10) {
      case 7:
        fail_step = 1;
        error = absl::UnavailableError("connections to all backends failing");
        break;
      case 8:
        fail_step = 1;
        error = absl::InternalError("scripted");
        break;
      case 9:
        fail_step = 0;
        error =
            WithErrorReason(absl::PermissionDeniedError("private address"), "DESTINATION_BLOCKED");
        break;
    }
    absl::StatusOr<conveyor::v1::Chain> ran =
        testing::RunSteps(scheduler, store, t.chain, fail_step, error);
    if (!ran.ok()) return 1;
    failed += ran->state() == conveyor::v1::FAILED;
  }
  std::printf("stored %d chains (%d FAILED) in %.1f s\n", chains, failed,
              absl::ToDoubleSeconds(absl::Now() - fill_start));

  auto time_list = [&](const char* what, ListQuery q) {
    std::vector<double> ms;
    int64_t scanned = 0, returned = 0;
    const absl::Time all_start = absl::Now();
    for (int p = 0; p < 1000; ++p) {
      const absl::Time start = absl::Now();
      absl::StatusOr<ListPage> page = store.List(q);
      ms.push_back(Ms(start));
      if (!page.ok()) {
        std::fprintf(stderr, "list: %s\n", page.status().ToString().c_str());
        return;
      }
      scanned += page->scanned;
      returned += static_cast<int64_t>(page->chains.size());
      if (page->next_page_token.empty()) break;
      q.page_token = page->next_page_token;
    }
    const double first = ms.front();
    std::sort(ms.begin(), ms.end());
    std::printf(
        "list %-52s first page %6.2f ms, median %6.2f ms, max %6.2f "
        "ms; %zu pages, %lld chains, "
        "%lld index entries read, all pages %.1f ms\n",
        what, first, ms[ms.size() / 2], ms.back(), ms.size(), static_cast<long long>(returned),
        static_cast<long long>(scanned), Ms(all_start));
  };
  ListQuery failed_resize_unavailable;
  failed_resize_unavailable.state = conveyor::v1::FAILED;
  failed_resize_unavailable.stage = conveyor::v1::STAGE_KIND_RESIZE;
  failed_resize_unavailable.error_reason = "UNAVAILABLE";
  time_list("state=FAILED stage=resize reason=UNAVAILABLE, 50/page", failed_resize_unavailable);
  ListQuery failed_all;
  failed_all.state = conveyor::v1::FAILED;
  time_list("state=FAILED (indexed, for comparison), 50/page", failed_all);
  ListQuery reason_only;
  reason_only.error_reason = "DESTINATION_BLOCKED";
  time_list("reason=DESTINATION_BLOCKED (all index), 50/page", reason_only);
  ListQuery label_stage;
  label_stage.labels["team"] = "web";
  label_stage.stage = conveyor::v1::STAGE_KIND_RESIZE;
  time_list("label team=web stage=resize (label index), 50/page", label_stage);
  ListQuery none_failed;
  none_failed.state = conveyor::v1::FAILED;
  none_failed.stage = conveyor::v1::STAGE_KIND_UPLOAD;
  time_list("worst: state=FAILED stage=upload (no match)", none_failed);
  ListQuery none_all;
  none_all.stage = conveyor::v1::STAGE_KIND_UPLOAD;
  time_list("worst: stage=upload (no match, all index)", none_all);

  conveyor::v1::RetryChainsRequest retry;
  retry.mutable_filter()->set_state(conveyor::v1::FAILED);
  retry.mutable_filter()->set_stage(conveyor::v1::STAGE_KIND_RESIZE);
  retry.set_dry_run(true);
  absl::Time start = absl::Now();
  absl::StatusOr<conveyor::v1::BulkChainsResponse> dry =
      api.RetryMany(testing::TenantUser(), retry);
  if (!dry.ok()) return 1;
  const double dry_ms = Ms(start);
  std::printf(
      "RetryChains dry run state=FAILED stage=resize: %lld matched in "
      "%.1f ms (%.3f ms "
      "per chain)\n",
      static_cast<long long>(dry->matched_count()), dry_ms,
      dry_ms / std::max<int64_t>(1, dry->matched_count()));
  retry.set_dry_run(false);
  start = absl::Now();
  absl::StatusOr<conveyor::v1::BulkChainsResponse> real =
      api.RetryMany(testing::TenantUser(), retry);
  if (!real.ok()) return 1;
  const double real_ms = Ms(start);
  std::printf(
      "RetryChains state=FAILED stage=resize: %lld retried in %.1f ms "
      "(%.3f ms per "
      "chain)\n",
      static_cast<long long>(real->changed_count()), real_ms,
      real_ms / std::max<int64_t>(1, real->changed_count()));
  return 0;
}

}  // namespace
}  // namespace conveyor::orchestrator

int main(int argc, char** argv) {
  const int chains = argc > 1 ? std::atoi(argv[1]) : 10000;
  return conveyor::orchestrator::Run(chains);
}
