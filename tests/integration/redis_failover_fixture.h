// The fixture of the Redis failover tests (redis_failover_test.cc and
// redis_sentinel_failover_test.cc, one binary): Redis going away and coming
// back, end to end on 127.0.0.1 with real processes: redis-server,
// redis-sentinel, conveyor-orchestrator, the download/resize/upload workers,
// the conveyor CLI, an HTTP origin.
//
// redis-server and redis-sentinel cannot bind port 0 and report the port, so
// each is started on a candidate port and started again on another if it
// could not bind (checked by the process id INFO reports, so a clash with
// another test's Redis is never mistaken for ours). The gRPC servers bind
// port 0 and the test reads the port from their "serving" log line.
#ifndef CONVEYOR_TESTS_INTEGRATION_REDIS_FAILOVER_FIXTURE_H_
#define CONVEYOR_TESTS_INTEGRATION_REDIS_FAILOVER_FIXTURE_H_

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/orchestrator_client.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/test_images.h"

// In conveyor::testing: the fixture's helpers (process_fixture.h,
// redis_node.h, orchestrator_client.h, ...) without a using-declaration each.
namespace conveyor::testing {

inline const std::string kBin = CONVEYOR_BIN_DIR;

// ---------------------------------------------------------------------------
// gRPC servers on port 0.

struct GrpcProcess {
  std::unique_ptr<ScopedProcess> process;
  std::string address;
  std::string log;
};

// Starts `binary --listen 127.0.0.1:0 flags...` and reads the bound port
// from its "msg=serving ... port=N" line.
inline GrpcProcess StartGrpc(const std::string& dir, const std::string& binary,
                             std::vector<std::string> flags) {
  static std::atomic<int> started{0};
  GrpcProcess p;
  p.log = absl::StrCat(dir, "/", binary, "-", started++, ".log");
  std::vector<std::string> argv = {kBin + "/" + binary, "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  p.process = std::make_unique<ScopedProcess>(argv, p.log);
  static const std::regex kServing("msg=serving .*port=([0-9]+)");
  const absl::Time until = absl::Now() + absl::Seconds(20);
  while (absl::Now() < until && p.address.empty() && p.process->running()) {
    std::smatch m;
    const std::string text = ReadFile(p.log);
    if (std::regex_search(text, m, kServing)) p.address = absl::StrCat("127.0.0.1:", m[1].str());
    if (p.address.empty()) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(p.address.empty()) << binary << " did not report a port:\n" << ReadFile(p.log);
  if (!p.address.empty()) {
    EXPECT_TRUE(WaitForGrpcServing(p.address, absl::Seconds(20)).ok()) << binary;
  }
  return p;
}

// Reconnect fast: the orchestrator itself never goes away in these tests,
// but keep a lost connection from adding seconds of backoff.
inline std::unique_ptr<v1::Orchestrator::Stub> Stub(const std::string& address) {
  return NewOrchestratorStub(address, absl::Milliseconds(200));
}

// The codes (and one message per code) that clients saw, for assertions.
class CodeLog {
 public:
  void Add(const std::string& rpc, const grpc::Status& status) {
    if (status.ok()) return;
    absl::MutexLock lock(&mu_);
    auto& [count, messages] = seen_[{rpc, status.error_code()}];
    ++count;
    if (messages.size() < 20) messages.insert(status.error_message());
  }
  // Every non-OK outcome other than UNAVAILABLE, spelled out.
  std::string Unexpected() {
    absl::MutexLock lock(&mu_);
    std::string out;
    for (const auto& [key, v] : seen_) {
      if (key.second == grpc::StatusCode::UNAVAILABLE) continue;
      absl::StrAppend(&out, key.first, ": code ", key.second, " x", v.first, " (",
                      absl::StrJoin(v.second, " | "), ")\n");
    }
    return out;
  }
  int Unavailable(const std::string& rpc) {
    absl::MutexLock lock(&mu_);
    auto it = seen_.find({rpc, grpc::StatusCode::UNAVAILABLE});
    return it == seen_.end() ? 0 : it->second.first;
  }
  bool AnyMessageContains(absl::string_view text) {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, v] : seen_) {
      for (const std::string& m : v.second) {
        if (absl::StrContains(m, text)) return true;
      }
    }
    return false;
  }

 private:
  absl::Mutex mu_;
  std::map<std::pair<std::string, grpc::StatusCode>, std::pair<int, std::set<std::string>>> seen_
      ABSL_GUARDED_BY(mu_);
};

class RedisFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http_.http().Get("/photo.jpg", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(image_, "image/jpeg");
    });
    // A download still running when Redis goes away, answered once the test
    // has seen Redis loading: its result comes back while Redis cannot take
    // it (bounded: 20 s at most).
    http_.http().Get("/held.jpg", [this](const httplib::Request&, httplib::Response& res) {
      const absl::Time until = absl::Now() + absl::Seconds(20);
      while (!release_held_.HasBeenNotified() && absl::Now() < until &&
             http_.SleepUnlessStopping(absl::Milliseconds(10))) {
      }
      res.set_content(image_, "image/jpeg");
    });
    http_.http().Get("/slow.jpg", [this](const httplib::Request&, httplib::Response& res) {
      http_.SleepUnlessStopping(absl::Milliseconds(1500));
      res.set_content(image_, "image/jpeg");
    });
    http_.Start();
  }

  void TearDown() override {
    if (!HasFailure() && std::getenv("CONVEYOR_TEST_DUMP_LOGS") == nullptr) return;
    for (const std::string& log : logs_) {
      std::fprintf(stderr, "===== %s\n%s\n", log.c_str(), ReadFile(log).c_str());
    }
  }

  void StartWorkers() {
    download_ = StartGrpc(dir_.path(), "conveyor-download", {"--allow-private-networks"});
    resize_ = StartGrpc(dir_.path(), "conveyor-resize", {});
    upload_ = StartGrpc(dir_.path(), "conveyor-upload", {"--file-root", objects_.path()});
    for (GrpcProcess* p : {&download_, &resize_, &upload_}) logs_.push_back(p->log);
  }

  GrpcProcess StartOrchestrator(const std::string& redis_url, std::vector<std::string> extra) {
    std::vector<std::string> flags = {
        "--redis-url",     redis_url,       "--download-target", download_.address,
        "--resize-target", resize_.address, "--upload-target",   upload_.address,
        "--log-level",     "info"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    GrpcProcess o = StartGrpc(dir_.path(), "conveyor-orchestrator", flags);
    logs_.push_back(o.log);
    return o;
  }

  v1::Step Fast(v1::Step step) {
    step.mutable_retry()->set_max_attempts(5);
    step.mutable_retry()->mutable_initial_backoff()->set_nanos(50'000'000);
    step.mutable_retry()->mutable_max_backoff()->set_nanos(200'000'000);
    step.mutable_timeout()->set_seconds(20);
    return step;
  }

  // download -> resize -> upload of `path` on the origin.
  v1::SubmitChainRequest Request(const std::string& path, const std::string& key) {
    v1::SubmitChainRequest req;
    v1::Step dl;
    dl.mutable_download()->set_url(http_.Url(path));
    *req.mutable_spec()->add_steps() = Fast(dl);
    v1::Step rs;
    rs.mutable_resize()->set_width(32);
    *req.mutable_spec()->add_steps() = Fast(rs);
    v1::Step up;
    up.mutable_upload()->set_destination("file://" + objects_.path());
    *req.mutable_spec()->add_steps() = Fast(up);
    req.set_idempotency_key(key);
    return req;
  }

  // Submits, retrying UNAVAILABLE with the same idempotency key (what a
  // client does across an outage), for at most `budget`.
  grpc::Status SubmitRetrying(v1::Orchestrator::Stub& stub, const v1::SubmitChainRequest& req,
                              v1::Chain* chain, CodeLog& codes, absl::Duration budget) {
    const absl::Time until = absl::Now() + budget;
    while (true) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      grpc::Status s = stub.SubmitChain(&ctx, req, chain);
      codes.Add("SubmitChain", s);
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE || absl::Now() > until) return s;
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  grpc::Status Get(v1::Orchestrator::Stub& stub, const std::string& name, v1::Chain* chain,
                   CodeLog& codes) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetChainRequest req;
    req.set_name(name);
    grpc::Status s = stub.GetChain(&ctx, req, chain);
    codes.Add("GetChain", s);
    return s;
  }

  // Polls every chain until all are terminal (GetChain, retrying
  // UNAVAILABLE), within `timeout`. Returns the last view of each.
  std::map<std::string, v1::Chain> WaitAllTerminal(v1::Orchestrator::Stub& stub,
                                                   const std::vector<std::string>& names,
                                                   CodeLog& codes, absl::Duration timeout) {
    std::map<std::string, v1::Chain> last;
    std::set<std::string> open(names.begin(), names.end());
    const absl::Time until = absl::Now() + timeout;
    while (!open.empty() && absl::Now() < until) {
      for (auto it = open.begin(); it != open.end();) {
        v1::Chain c;
        if (Get(stub, *it, &c, codes).ok()) {
          last[*it] = c;
          if (IsTerminal(c.state())) {
            it = open.erase(it);
            continue;
          }
        }
        ++it;
      }
      if (!open.empty()) absl::SleepFor(absl::Milliseconds(50));
    }
    EXPECT_TRUE(open.empty()) << open.size() << " chains not terminal after "
                              << absl::FormatDuration(timeout) << ", e.g. "
                              << last[*open.begin()].ShortDebugString();
    return last;
  }

  absl::Notification release_held_;
  TempDir dir_;
  TempDir objects_;
  std::mt19937 rng_{static_cast<uint32_t>(::getpid() ^ absl::ToUnixNanos(absl::Now()))};
  std::string image_ = NoiseJpeg(320, 240);
  HttpTestServer http_;
  GrpcProcess download_, resize_, upload_;
  std::vector<std::string> logs_;
};

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_INTEGRATION_REDIS_FAILOVER_FIXTURE_H_
