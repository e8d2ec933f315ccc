// conveyor-orchestrator-bench: measurements for issue 4 (not a test).
//   1. ListChains page time with 100,000 chains stored (RedisChainStore).
//   2. Coordinator CPU per step and dispatch latency: a real orchestrator
//      process drives 1-step-after-another chains through a pass-through
//      worker (conveyor-test-flaky-stage, no failures, no delay).
// Usage: conveyor-orchestrator-bench [chains_for_list=100000] [chains=200] [steps=5]
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdio>
#include <opencv2/imgcodecs.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "orchestrator/redis/redis_keys.h"
#include "orchestrator/redis_chain_store.h"
#include "orchestrator/scheduler.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/process_fixture.h"
#include "tools/common/proc_stats.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::testing::OrchestratorProcess;
using conveyor::testing::RedisServer;
using conveyor::testing::ScopedProcess;
using conveyor::testing::ServerProcess;
using conveyor::tools::CpuSeconds;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

void BenchList(int chains) {
  RedisServer redis;
  RedisConnectionPool pool(*ParseRedisUrl(redis.url()), absl::Seconds(1), absl::Seconds(30));
  RedisChainStore store(pool, {});
  testing::FakeClock clock;
  testing::FixedRandom random;
  Scheduler scheduler(clock, random);
  conveyor::v1::ChainSpec spec;
  spec.add_steps()->mutable_download()->set_url("https://example.com/a.jpg");
  spec.add_steps()->mutable_resize()->set_width(100);
  const absl::Time fill_start = absl::Now();
  for (int i = 0; i < chains; ++i) {
    (*spec.mutable_labels())["tenant"] = absl::StrCat("t", i % 100);
    clock.Advance(absl::Milliseconds(1));
    Transition t = scheduler.Submit(spec, absl::StrFormat("%032x", i), "", absl::nullopt);
    if (!store.Submit(t, "h", nullptr).ok()) {
      std::fprintf(stderr, "submit failed\n");
      return;
    }
  }
  std::printf("list: stored %d chains in %.1f s\n", chains,
              absl::ToDoubleSeconds(absl::Now() - fill_start));
  auto time_page = [&](const char* what, ListQuery q, int pages) {
    std::vector<double> ms;
    for (int p = 0; p < pages; ++p) {
      const absl::Time start = absl::Now();
      absl::StatusOr<ListPage> page = store.List(q);
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
      if (!page.ok() || page->next_page_token.empty()) break;
      q.page_token = page->next_page_token;
    }
    std::printf("list: %-34s pages=%zu median=%.2f ms max=%.2f ms\n", what, ms.size(),
                Percentile(ms, 0.5), Percentile(ms, 1.0));
  };
  ListQuery all;
  all.page_size = 50;
  time_page("all, 50/page, 20 pages", all, 20);
  ListQuery big = all;
  big.page_size = 1000;
  time_page("all, 1000/page, 5 pages", big, 5);
  ListQuery label = all;
  label.labels["tenant"] = "t7";
  time_page("label tenant=t7 (1%), 50/page", label, 10);
  ListQuery state = all;
  state.state = conveyor::v1::PENDING;
  time_page("state PENDING, 50/page", state, 10);
  ListQuery window = all;
  window.created_after = clock.Now() - absl::Seconds(30);
  window.created_before = clock.Now() - absl::Seconds(20);
  time_page("created in a 10 s window", window, 10);
}

void BenchDispatch(int chains, int steps) {
  RedisServer redis;
  conveyor::testing::TempDir dir;
  ServerProcess flaky({std::string(CONVEYOR_BIN_DIR) + "/conveyor-test-flaky-stage"},
                      dir.path() + "/worker.log");
  if (!flaky.started().ok() || !flaky.WaitUntilServing().ok()) {
    std::fprintf(stderr, "worker did not start\n");
    return;
  }
  OrchestratorProcess orch_server(redis.url(), {{"resize", flaky.address()}},
                                  {"--log-level", "warn"}, dir.path() + "/orchestrator.log");
  ScopedProcess& orch = orch_server.process();
  if (!orch_server.ready().ok()) {
    std::fprintf(stderr, "orchestrator did not start: %s\n",
                 orch_server.ready().ToString().c_str());
    return;
  }
  conveyor::v1::Orchestrator::Stub* stub = &orch_server.stub();
  cv::Mat img(32, 32, CV_8UC3, cv::Scalar(10, 20, 30));
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", img, jpeg);
  conveyor::v1::SubmitChainRequest req;
  req.mutable_source()->set_data(std::string(jpeg.begin(), jpeg.end()));
  for (int i = 0; i < steps; ++i) req.mutable_spec()->add_steps()->mutable_resize()->set_width(16);
  absl::SleepFor(absl::Seconds(1));  // let start-up work settle before measuring
  const double cpu_idle_start = CpuSeconds(orch.pid());
  absl::SleepFor(absl::Seconds(2));
  const double idle_cpu = CpuSeconds(orch.pid()) - cpu_idle_start;
  const double cpu_start = CpuSeconds(orch.pid());
  const absl::Time start = absl::Now();
  std::vector<std::string> names;
  for (int i = 0; i < chains; ++i) {
    grpc::ClientContext ctx;
    conveyor::v1::Chain chain;
    if (!stub->SubmitChain(&ctx, req, &chain).ok()) {
      std::fprintf(stderr, "submit failed\n");
      return;
    }
    names.push_back(chain.name());
  }
  const double cpu_after_submit = CpuSeconds(orch.pid());
  // Wait on Redis directly, so the measurement does not include serving polls.
  RedisConnectionPool pool(*ParseRedisUrl(redis.url()), absl::Seconds(1), absl::Seconds(5));
  RedisChainStore store(pool, {});
  int done = 0;
  for (int round = 0; round < 60000 && done < chains; ++round) {
    auto conn = pool.Acquire();
    absl::StatusOr<RedisValue> n = conn->Command({"ZCARD", StateIndexKey(conveyor::v1::SUCCEEDED)});
    done = n.ok() ? static_cast<int>(n->integer) : 0;
    if (done < chains) absl::SleepFor(absl::Milliseconds(2));
  }
  const absl::Duration wall = absl::Now() - start;
  const double cpu_total = CpuSeconds(orch.pid()) - cpu_start;
  // Latency from a step's recorded success to the next step's recorded start,
  // first under the load above, then for chains run one at a time.
  auto latencies = [&](const std::vector<std::string>& chain_names) {
  std::vector<double> latency_ms;
  for (const auto& n : chain_names) {
    absl::StatusOr<EventBatch> events = store.Events(n.substr(7), "0", 1000, absl::ZeroDuration());
    if (!events.ok()) continue;
    absl::Time succeeded;
    for (const auto& e : events->events) {
      if (e.type() == conveyor::v1::ChainEvent::STEP_SUCCEEDED) succeeded = FromProtoTime(e.time());
      if (e.type() == conveyor::v1::ChainEvent::STEP_STARTED && e.step_index() > 0) {
        latency_ms.push_back(absl::ToDoubleMilliseconds(FromProtoTime(e.time()) - succeeded));
      }
    }
  }
  return latency_ms;
  };
  std::vector<double> latency_ms = latencies(names);
  const int total_steps = chains * steps;
  std::printf("dispatch: %d chains x %d steps = %d steps, %d succeeded, wall %.2f s (%.0f steps/s)\n",
              chains, steps, total_steps, done, absl::ToDoubleSeconds(wall),
              total_steps / absl::ToDoubleSeconds(wall));
  std::printf("dispatch: orchestrator CPU %.3f s total (submits %.3f s), %.3f ms per step "
              "including serving the submits; %.3f ms per step without them\n",
              cpu_total, cpu_after_submit - cpu_start, 1000.0 * cpu_total / total_steps,
              1000.0 * (cpu_total - (cpu_after_submit - cpu_start)) / total_steps);
  std::printf("dispatch: idle CPU over 2 s: %.3f s\n", idle_cpu);
  std::printf("dispatch: under load (%d chains at once), next-step latency (success recorded -> "
              "next start recorded): median %.3f ms, p90 %.3f ms, p99 %.3f ms (n=%zu)\n",
              chains, Percentile(latency_ms, 0.5), Percentile(latency_ms, 0.9),
              Percentile(latency_ms, 0.99), latency_ms.size());
  std::vector<std::string> sequential;
  for (int i = 0; i < 30; ++i) {
    grpc::ClientContext ctx;
    conveyor::v1::Chain chain;
    if (!stub->SubmitChain(&ctx, req, &chain).ok()) return;
    sequential.push_back(chain.name());
    for (int round = 0; round < 5000; ++round) {
      absl::StatusOr<StoredChain> c = store.Load(chain.name().substr(7));
      if (c.ok() && c->chain.state() == conveyor::v1::SUCCEEDED) break;
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  std::vector<double> idle = latencies(sequential);
  std::printf("dispatch: one chain at a time, next-step latency: median %.3f ms, p90 %.3f ms, "
              "max %.3f ms (n=%zu)\n",
              Percentile(idle, 0.5), Percentile(idle, 0.9), Percentile(idle, 1.0), idle.size());
}

}  // namespace
}  // namespace conveyor::orchestrator

int main(int argc, char** argv) {
  const int list_chains = argc > 1 ? std::atoi(argv[1]) : 100000;
  const int chains = argc > 2 ? std::atoi(argv[2]) : 200;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 5;
  if (list_chains > 0) conveyor::orchestrator::BenchList(list_chains);
  if (chains > 0) conveyor::orchestrator::BenchDispatch(chains, steps);
  return 0;
}
