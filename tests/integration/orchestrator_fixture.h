// The fixture of the conveyor-orchestrator end-to-end tests
// (orchestrator_*test.cc, one binary): real redis-server, orchestrator
// processes and workers on 127.0.0.1, and the step builders they share.
#ifndef CONVEYOR_TESTS_INTEGRATION_ORCHESTRATOR_FIXTURE_H_
#define CONVEYOR_TESTS_INTEGRATION_ORCHESTRATOR_FIXTURE_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "gtest/gtest.h"
#include "orchestrator/redis/redis_connection.h"
#include "tests/testing/orchestrator_client.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/test_images.h"

// In conveyor::testing: the fixture's helpers (orchestrator_client.h,
// test_images.h) without a using-declaration each.
namespace conveyor::testing {

inline const std::string kBin = CONVEYOR_BIN_DIR;

// A step with fast retries, so tests stay within seconds.
inline v1::Step Fast(v1::Step step, int max_attempts = 4,
                     absl::Duration timeout = absl::Seconds(10)) {
  step.mutable_retry()->set_max_attempts(max_attempts);
  step.mutable_retry()->mutable_initial_backoff()->set_nanos(50'000'000);
  step.mutable_retry()->mutable_max_backoff()->set_nanos(200'000'000);
  step.mutable_retry()->set_jitter(1e-9);
  step.mutable_timeout()->set_seconds(absl::ToInt64Seconds(timeout));
  step.mutable_timeout()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(timeout) % 1'000'000'000));
  return step;
}
inline v1::Step Resize(int width = 32) {
  v1::Step s;
  s.mutable_resize()->set_width(width);
  return Fast(s);
}
inline v1::Step Filter() {
  v1::Step s;
  s.mutable_filter()->add_ops()->mutable_grayscale();
  return Fast(s);
}

// A flaky worker's calls: (chain, step) -> outcomes, in call order.
using CallMap = std::map<std::pair<std::string, int>, std::vector<std::string>>;
inline CallMap Calls(const std::string& path) {
  CallMap out;
  for (const FlakyCall& call : ReadFlakyCalls(path)) {
    out[{call.chain, call.step}].push_back(call.outcome);
  }
  return out;
}
inline std::vector<std::string> Of(const CallMap& calls, const std::string& chain, int step) {
  auto it = calls.find({chain, step});
  return it == calls.end() ? std::vector<std::string>{} : it->second;
}

class OrchestratorTest : public ::testing::Test {
 protected:
  // On failure (or with CONVEYOR_TEST_DUMP_LOGS set), print every process log.
  void TearDown() override { DumpLogs(logs_, HasFailure()); }

  // A worker started on port 0; `process` is its process, for signals.
  struct Worker {
    std::unique_ptr<ServerProcess> server;
    ScopedProcess* process = nullptr;
    std::string address;
    std::string calls_file;
  };
  void Launch(Worker& w, std::vector<std::string> argv, const std::string& log) {
    w.server = std::make_unique<ServerProcess>(std::move(argv), log);
    w.process = &w.server->process();
    w.address = w.server->address();
    EXPECT_TRUE(w.server->WaitUntilServing(absl::Seconds(10)).ok()) << log;
  }

  // A flaky test worker (ResizeStage + FilterStage).
  Worker StartFlaky(std::vector<std::string> extra = {}) {
    Worker w;
    w.calls_file = absl::StrCat(dir_.path(), "/calls-", workers_started_++, ".txt");
    std::vector<std::string> argv = {kBin + "/conveyor-test-flaky-stage", "--calls-file",
                                     w.calls_file};
    argv.insert(argv.end(), extra.begin(), extra.end());
    logs_.push_back(w.calls_file + ".log");
    Launch(w, argv, logs_.back());
    return w;
  }

  Worker StartRealWorker(const std::string& binary, std::vector<std::string> extra = {}) {
    Worker w;
    std::vector<std::string> argv = {kBin + "/" + binary};
    argv.insert(argv.end(), extra.begin(), extra.end());
    logs_.push_back(absl::StrCat(dir_.path(), "/", binary, ".log"));
    Launch(w, argv, logs_.back());
    return w;
  }

  struct Orchestrator {
    std::unique_ptr<OrchestratorProcess> server;
    ScopedProcess* process = nullptr;
    std::string address;
    std::string log;
    v1::Orchestrator::Stub* stub = nullptr;
    int port() const { return server->port(); }
  };

  // Unset targets point at a port where nothing listens. `port` other than
  // 0 restarts an orchestrator where its clients expect it.
  Orchestrator StartOrchestrator(const std::map<std::string, std::string>& targets,
                                 std::vector<std::string> extra = {}, int port = 0) {
    Orchestrator o;
    o.log = absl::StrCat(dir_.path(), "/orchestrator-", orchestrators_started_++, ".log");
    logs_.push_back(o.log);
    extra.insert(extra.begin(), {"--lease-timeout", "1s", "--log-level", "info"});
    o.server = std::make_unique<OrchestratorProcess>(redis_.url(), targets, extra, o.log, port);
    EXPECT_TRUE(o.server->ready().ok()) << o.server->ready();
    o.process = &o.server->process();
    o.address = o.server->address();
    o.stub = &o.server->stub();
    return o;
  }

  int64_t RedisInt(std::initializer_list<std::string> argv) {
    orchestrator::RedisConnection conn(*orchestrator::ParseRedisUrl(redis_.url()), absl::Seconds(1),
                                       absl::Seconds(2));
    absl::StatusOr<orchestrator::RedisValue> v = conn.Command(argv);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? v->integer : -1;
  }

  v1::SubmitChainRequest InlineRequest(std::vector<v1::Step> steps) {
    v1::SubmitChainRequest req;
    for (auto& s : steps) *req.mutable_spec()->add_steps() = s;
    req.mutable_source()->set_data(jpeg_);
    return req;
  }

  RedisServer redis_;
  TempDir dir_;
  std::string jpeg_ = NoiseJpeg(96, 64);
  std::vector<std::string> logs_;
  int workers_started_ = 0;
  int orchestrators_started_ = 0;
};

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_INTEGRATION_ORCHESTRATOR_FIXTURE_H_
