// Redis going away and coming back, end to end on 127.0.0.1 with real
// processes: redis-server, redis-sentinel, conveyor-orchestrator, the
// download/resize/upload workers, the conveyor CLI, an HTTP origin.
//
//   - A restart with a large AOF: while Redis loads, clients calling
//     SubmitChain, GetChain and WatchChain see only UNAVAILABLE (never
//     INTERNAL), `conveyor watch` and `submit --wait` ride it out, every chain
//     succeeds, and none waits a lease for a result already computed.
//   - Sentinel: the primary is SIGKILLed mid-load, the sentinels promote the
//     replica, the orchestrator follows it, every chain SUCCEEDED.
//
// redis-server and redis-sentinel cannot bind port 0 and report the port, so
// each is started on a candidate port and started again on another if it
// could not bind (checked by the process id INFO reports, so a clash with
// another test's Redis is never mistaken for ours). The gRPC servers bind
// port 0 and the test reads the port from their "serving" log line.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "orchestrator/redis/redis_connection.h"
#include "tests/testing/command_runner.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/orchestrator_client.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/redis_node.h"
#include "tests/testing/test_images.h"

// In conveyor::testing: the fixture's helpers (process_fixture.h,
// redis_node.h, orchestrator_client.h, ...) without a using-declaration each.
namespace conveyor::testing {
namespace {

using orchestrator::ParseRedisUrl;
using orchestrator::RedisConnection;
using orchestrator::RedisValue;
using v1::Chain;
using v1::ChainEvent;

const std::string kBin = CONVEYOR_BIN_DIR;

// ---------------------------------------------------------------------------
// gRPC servers on port 0.

struct GrpcProcess {
  std::unique_ptr<ScopedProcess> process;
  std::string address;
  std::string log;
};

// Starts `binary --listen 127.0.0.1:0 flags...` and reads the bound port
// from its "msg=serving ... port=N" line.
GrpcProcess StartGrpc(const std::string& dir, const std::string& binary,
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
std::unique_ptr<v1::Orchestrator::Stub> Stub(const std::string& address) {
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
  std::map<std::pair<std::string, grpc::StatusCode>, std::pair<int, std::set<std::string>>>
      seen_ ABSL_GUARDED_BY(mu_);
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
    std::vector<std::string> flags = {"--redis-url",       redis_url,
                                      "--download-target", download_.address,
                                      "--resize-target",   resize_.address,
                                      "--upload-target",   upload_.address,
                                      "--log-level",       "info"};
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
                              Chain* chain, CodeLog& codes, absl::Duration budget) {
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

  grpc::Status Get(v1::Orchestrator::Stub& stub, const std::string& name, Chain* chain,
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
  std::map<std::string, Chain> WaitAllTerminal(v1::Orchestrator::Stub& stub,
                                               const std::vector<std::string>& names,
                                               CodeLog& codes, absl::Duration timeout) {
    std::map<std::string, Chain> last;
    std::set<std::string> open(names.begin(), names.end());
    const absl::Time until = absl::Now() + timeout;
    while (!open.empty() && absl::Now() < until) {
      for (auto it = open.begin(); it != open.end();) {
        Chain c;
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

// ---------------------------------------------------------------------------

TEST_F(RedisFailoverTest, RestartWithLargeAofIsUnavailableNeverInternal) {
  const std::string data = dir_.path() + "/redis-data";
  std::filesystem::create_directories(data);
  auto started = RedisNode::Start(
      "/usr/bin/redis-server", dir_.path(), "redis",
      {"dir " + data, "save \"\"", "appendonly yes", "appendfsync everysec",
       // One AOF of commands (no rewrite into an RDB base, which loads fast).
       "auto-aof-rewrite-percentage 0"},
      rng_);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<RedisNode> redis = *std::move(started);
  logs_.push_back(redis->log());
  // Ballast, so that loading the AOF takes a while (about a second here):
  // 400k keys of 128 bytes, ~70 MB of AOF.
  {
    RedisConnection conn(*ParseRedisUrl(absl::StrCat("redis://127.0.0.1:", redis->port())),
                         absl::Seconds(1), absl::Seconds(30));
    const std::string value(128, 'b');
    for (int batch = 0; batch < 80; ++batch) {
      std::vector<std::vector<std::string>> commands;
      for (int i = 0; i < 5000; ++i) {
        commands.push_back({"SET", absl::StrCat("ballast:", batch * 5000 + i), value});
      }
      absl::StatusOr<std::vector<RedisValue>> done = conn.Pipeline(commands);
      ASSERT_TRUE(done.ok()) << done.status();
    }
  }
  StartWorkers();
  // The default lease (10 s): a chain finishing within a few seconds of
  // Redis serving again has not waited for one.
  const absl::Duration lease = absl::Seconds(10);
  GrpcProcess o = StartOrchestrator(absl::StrCat("redis://127.0.0.1:", redis->port()),
                                    {"--lease-timeout", "10s"});
  auto stub = Stub(o.address);
  CodeLog codes;

  // Chains in every phase: done before, running across (slow downloads whose
  // results come back while Redis is away), and submitted during the outage.
  std::vector<std::string> names;
  for (int i = 0; i < 4; ++i) {
    Chain c;
    ASSERT_TRUE(SubmitRetrying(*stub, Request("/photo.jpg", absl::StrCat("before-", i)), &c,
                               codes, absl::Seconds(5))
                    .ok());
    names.push_back(c.name());
  }
  std::vector<std::string> across;
  for (int i = 0; i < 4; ++i) {
    Chain c;
    ASSERT_TRUE(SubmitRetrying(*stub, Request("/held.jpg", absl::StrCat("across-", i)), &c,
                               codes, absl::Seconds(5))
                    .ok());
    names.push_back(c.name());
    across.push_back(c.name());
  }

  // The CLI: `watch` on a running chain, and `submit --wait` of a new one.
  const std::vector<std::string> cli = {kBin + "/conveyor", "--server", o.address};
  CommandResult watch, submit_wait;
  std::thread watcher([&] {
    std::vector<std::string> argv = cli;
    argv.insert(argv.end(), {"watch", across[0], "--max-wait", "90s"});
    watch = RunCommand(argv, absl::Seconds(100));
  });
  std::thread waiter([&] {
    std::vector<std::string> argv = cli;
    argv.insert(argv.end(), {"submit", "--url", http_.Url("/held.jpg"), "--resize", "32x",
                             "--upload", "file://" + objects_.path(), "--wait", "--max-wait",
                             "90s"});
    submit_wait = RunCommand(argv, absl::Seconds(100));
  });

  // Clients hammering all three RPCs for the whole outage.
  std::atomic<bool> stop{false};
  absl::Mutex names_mu;
  std::vector<std::string> during;
  std::vector<std::thread> clients;
  clients.emplace_back([&] {  // SubmitChain
    auto s = Stub(o.address);
    for (int i = 0; !stop && i < 200; ++i) {
      Chain c;
      if (SubmitRetrying(*s, Request("/photo.jpg", absl::StrCat("during-", i)), &c, codes,
                         absl::Seconds(60))
              .ok()) {
        absl::MutexLock lock(&names_mu);
        during.push_back(c.name());
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
  clients.emplace_back([&] {  // GetChain
    auto s = Stub(o.address);
    for (int i = 0; !stop && i < 5000; ++i) {
      Chain c;
      Get(*s, names[i % names.size()], &c, codes);
      absl::SleepFor(absl::Milliseconds(10));
    }
  });
  clients.emplace_back([&] {  // WatchChain, resuming after the last event
    auto s = Stub(o.address);
    std::string after;
    for (int i = 0; !stop && i < 2000; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      v1::WatchChainRequest req;
      req.set_name(across[1]);
      req.set_after_event_id(after);
      auto reader = s->WatchChain(&ctx, req);
      ChainEvent e;
      while (reader->Read(&e)) after = e.event_id();
      grpc::Status st = reader->Finish();
      codes.Add("WatchChain", st);
      if (st.ok()) after.clear();  // ended (terminal): watch it again from the start
      absl::SleepFor(absl::Milliseconds(20));
    }
  });

  // Restart mid-flight: SIGTERM (Redis writes and fsyncs its AOF, then
  // exits), start it again on the same port, and time the loading.
  absl::SleepFor(absl::Milliseconds(500));  // the held downloads are under way
  redis->process().Signal(SIGTERM);
  ASSERT_GE(redis->process().Wait(absl::Seconds(30)), 0);
  const absl::Time down = absl::Now();
  ASSERT_TRUE(redis->Restart()) << ReadFile(redis->log());
  bool saw_loading = false;
  absl::Time serving = absl::InfiniteFuture();
  for (const absl::Time until = absl::Now() + absl::Seconds(60); absl::Now() < until;) {
    absl::StatusOr<RedisValue> ping = RedisCall(redis->port(), {"PING"});
    if (ping.ok()) {
      serving = absl::Now();
      break;
    }
    if (absl::StrContains(ping.status().message(), "LOADING")) {
      saw_loading = true;
      // The workers' results for the held downloads now arrive while Redis
      // cannot record them.
      if (!release_held_.HasBeenNotified()) release_held_.Notify();
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  if (!release_held_.HasBeenNotified()) release_held_.Notify();
  ASSERT_NE(serving, absl::InfiniteFuture()) << "redis never served again";
  uintmax_t aof_bytes = 0;
  for (const auto& f : std::filesystem::recursive_directory_iterator(data)) {
    if (f.is_regular_file()) aof_bytes += f.file_size();
  }
  std::fprintf(stderr, "redis away for %s with %ju MB of AOF (LOADING seen: %s)\n",
               absl::FormatDuration(serving - down).c_str(), aof_bytes >> 20,
               saw_loading ? "yes" : "no");
  EXPECT_TRUE(saw_loading) << "the AOF loaded too fast to test LOADING";

  // Let the clients run on a little past the outage, then stop them.
  absl::SleepFor(absl::Seconds(2));
  stop = true;
  for (std::thread& t : clients) t.join();
  {
    absl::MutexLock lock(&names_mu);
    names.insert(names.end(), during.begin(), during.end());
  }
  std::map<std::string, Chain> final_chains =
      WaitAllTerminal(*stub, names, codes, absl::Seconds(60));
  watcher.join();
  waiter.join();

  EXPECT_EQ(codes.Unexpected(), "") << "clients saw codes other than UNAVAILABLE";
  EXPECT_GT(codes.Unavailable("SubmitChain") + codes.Unavailable("GetChain"), 0)
      << "no client met the outage";
  EXPECT_TRUE(codes.AnyMessageContains("LOADING")) << "no client met the loading";
  for (const auto& [name, chain] : final_chains) {
    EXPECT_EQ(chain.state(), v1::SUCCEEDED) << chain.ShortDebugString();
    // No chain waits a lease for a result that was already computed: each
    // ends within a few seconds of Redis serving again, far under the lease.
    const absl::Time end = absl::FromUnixSeconds(chain.end_time().seconds()) +
                           absl::Nanoseconds(chain.end_time().nanos());
    EXPECT_LT(end - serving, absl::Seconds(4))
        << name << " ended " << absl::FormatDuration(end - serving)
        << " after Redis served again (lease " << absl::FormatDuration(lease) << ")";
  }
  EXPECT_EQ(watch.exit_code, 0) << "watch: " << watch.out << watch.err;
  EXPECT_TRUE(absl::StrContains(watch.out, across[0] + " SUCCEEDED")) << watch.out;
  EXPECT_EQ(submit_wait.exit_code, 0) << "submit --wait: " << submit_wait.out << submit_wait.err;
  EXPECT_TRUE(absl::StrContains(submit_wait.out, "SUCCEEDED")) << submit_wait.out;
}

// ---------------------------------------------------------------------------

TEST_F(RedisFailoverTest, SentinelPromotesReplicaAndEveryChainSucceeds) {
  auto started_primary = RedisNode::Start("/usr/bin/redis-server", dir_.path(), "primary",
                                          {"dir " + dir_.path(), "save \"\"", "appendonly no"},
                                          rng_);
  ASSERT_TRUE(started_primary.ok()) << started_primary.status();
  std::unique_ptr<RedisNode> primary = *std::move(started_primary);
  auto started_replica = RedisNode::Start(
      "/usr/bin/redis-server", dir_.path(), "replica",
      {"dir " + dir_.path(), "save \"\"", "appendonly no",
       absl::StrCat("replicaof 127.0.0.1 ", primary->port())},
      rng_);
  ASSERT_TRUE(started_replica.ok()) << started_replica.status();
  std::unique_ptr<RedisNode> replica = *std::move(started_replica);
  std::vector<std::unique_ptr<RedisNode>> sentinels;
  for (int i = 0; i < 3; ++i) {
    auto sentinel = RedisNode::Start(
        "/usr/bin/redis-sentinel", dir_.path(), absl::StrCat("sentinel-", i),
        {"dir " + dir_.path(),
         absl::StrCat("sentinel monitor mymaster 127.0.0.1 ", primary->port(), " 2"),
         "sentinel down-after-milliseconds mymaster 1000",
         "sentinel failover-timeout mymaster 5000", "sentinel parallel-syncs mymaster 1"},
        rng_);
    ASSERT_TRUE(sentinel.ok()) << sentinel.status();
    sentinels.push_back(*std::move(sentinel));
  }
  for (RedisNode* n : {primary.get(), replica.get()}) logs_.push_back(n->log());
  for (auto& s : sentinels) logs_.push_back(s->log());

  // Ready: the replica in sync, every sentinel knowing the replica and the
  // two other sentinels (else a failover cannot reach its quorum).
  auto ready = [&] {
    absl::StatusOr<RedisValue> info = RedisCall(replica->port(), {"INFO", "replication"});
    if (!info.ok() || InfoField(info->str, "master_link_status") != "up") return false;
    for (auto& s : sentinels) {
      absl::StatusOr<RedisValue> m = RedisCall(s->port(), {"SENTINEL", "master", "mymaster"});
      if (!m.ok() || ReplyField(*m, "num-slaves") != "1" ||
          ReplyField(*m, "num-other-sentinels") != "2") {
        return false;
      }
    }
    return true;
  };
  bool is_ready = false;
  for (const absl::Time until = absl::Now() + absl::Seconds(30); !is_ready && absl::Now() < until;) {
    is_ready = ready();
    if (!is_ready) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(is_ready) << "sentinels did not converge";

  StartWorkers();
  std::vector<std::string> hosts;
  for (auto& s : sentinels) hosts.push_back(absl::StrCat("127.0.0.1:", s->port()));
  GrpcProcess o = StartOrchestrator(
      absl::StrCat("redis-sentinel://", absl::StrJoin(hosts, ","), "/mymaster"),
      {"--lease-timeout", "3s"});
  auto stub = Stub(o.address);
  CodeLog codes;

  // 60 chains submitted over ~3 s; the primary dies a second in.
  constexpr int kChains = 60;
  std::vector<std::string> names;
  std::vector<absl::Time> accepted;  // when each submit succeeded
  absl::Mutex names_mu;
  std::thread submitter([&] {
    auto s = Stub(o.address);
    for (int i = 0; i < kChains; ++i) {
      Chain c;
      grpc::Status st = SubmitRetrying(*s, Request("/photo.jpg", absl::StrCat("chain-", i)), &c,
                                       codes, absl::Seconds(60));
      EXPECT_TRUE(st.ok()) << st.error_message();
      if (st.ok()) {
        absl::MutexLock lock(&names_mu);
        names.push_back(c.name());
        accepted.push_back(absl::Now());
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  });
  absl::SleepFor(absl::Seconds(1));
  std::vector<std::string> before_kill;
  {
    absl::MutexLock lock(&names_mu);
    before_kill = names;
  }
  primary->Kill();
  const absl::Time killed = absl::Now();
  // Wait (bounded) for the sentinels to name the replica.
  absl::Time promoted = absl::InfiniteFuture();
  for (const absl::Time until = absl::Now() + absl::Seconds(30); absl::Now() < until;) {
    absl::StatusOr<RedisValue> addr =
        RedisCall(sentinels[0]->port(), {"SENTINEL", "get-master-addr-by-name", "mymaster"});
    if (addr.ok() && addr->is_array() && addr->elements.size() == 2 &&
        addr->elements[1].str == std::to_string(replica->port())) {
      promoted = absl::Now();
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_NE(promoted, absl::InfiniteFuture()) << "the replica was not promoted";
  submitter.join();
  std::vector<std::string> all;
  absl::Time writes_again = absl::InfiniteFuture();
  int terminal_at_kill = 0;
  {
    absl::MutexLock lock(&names_mu);
    all = names;
    for (absl::Time t : accepted) {
      if (t > killed) writes_again = std::min(writes_again, t);
    }
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kChains));
  std::map<std::string, Chain> final_chains =
      WaitAllTerminal(*stub, all, codes, absl::Seconds(90));
  int succeeded = 0;
  for (const std::string& name : before_kill) {
    const Chain& c = final_chains[name];
    const absl::Time end = absl::FromUnixSeconds(c.end_time().seconds()) +
                           absl::Nanoseconds(c.end_time().nanos());
    terminal_at_kill += end < killed;
  }
  for (const auto& [name, chain] : final_chains) {
    EXPECT_EQ(chain.state(), v1::SUCCEEDED) << chain.ShortDebugString();
    succeeded += chain.state() == v1::SUCCEEDED;
  }
  EXPECT_EQ(succeeded, kChains);
  EXPECT_EQ(codes.Unexpected(), "");

  // The orchestrator writes to the new primary (not only reads a replica).
  absl::StatusOr<RedisValue> role = RedisCall(replica->port(), {"ROLE"});
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(role->elements[0].str, "master");
  const std::string olog = ReadFile(o.log);
  EXPECT_TRUE(absl::StrContains(olog, "redis primary moved")) << olog;

  // The cancel subscription followed the new primary too: a cancel reaches a
  // call in flight (the slow download ends CANCELLED, not after 1.5 s OK).
  Chain slow;
  ASSERT_TRUE(SubmitRetrying(*stub, Request("/slow.jpg", "slow-after-failover"), &slow, codes,
                             absl::Seconds(10))
                  .ok());
  absl::SleepFor(absl::Milliseconds(500));  // dispatched, downloading
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::CancelChainRequest req;
    req.set_name(slow.name());
    Chain cancelled;
    grpc::Status st = stub->CancelChain(&ctx, req, &cancelled);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  absl::SleepFor(absl::Seconds(2));  // past the download's 1.5 s
  const std::string dlog = ReadFile(download_.log);
  bool cancelled_call = false;
  for (absl::string_view line : absl::StrSplit(dlog, '\n')) {
    if (absl::StrContains(line, slow.name()) && absl::StrContains(line, "code=CANCELLED")) {
      cancelled_call = true;
    }
  }
  EXPECT_TRUE(cancelled_call) << "the in-flight download was not cancelled:\n" << dlog;

  std::fprintf(stderr,
               "failover: sentinels named the replica %s after the primary died "
               "(down-after-milliseconds 1000); the orchestrator accepted a submit again "
               "after %s; %d of %d chains were done at the kill\n",
               absl::FormatDuration(promoted - killed).c_str(),
               absl::FormatDuration(writes_again - killed).c_str(), terminal_at_kill, kChains);
}

}  // namespace
}  // namespace conveyor::testing
