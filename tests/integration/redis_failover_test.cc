// A Redis restart with a large AOF, end to end (fixture:
// redis_failover_fixture.h): while Redis loads, clients calling SubmitChain,
// GetChain and WatchChain see only UNAVAILABLE (never INTERNAL), `conveyor
// watch` and `submit --wait` ride it out, every chain succeeds, and none
// waits a lease for a result already computed.
#include <signal.h>

#include <filesystem>
#include <thread>

#include "orchestrator/redis/redis_connection.h"
#include "tests/integration/redis_failover_fixture.h"
#include "tests/testing/command_runner.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/redis_node.h"

namespace conveyor::testing {
namespace {

using orchestrator::ParseRedisUrl;
using orchestrator::RedisConnection;
using orchestrator::RedisValue;
using v1::Chain;
using v1::ChainEvent;

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

}  // namespace
}  // namespace conveyor::testing
