// Sentinel failover end to end (fixture: redis_failover_fixture.h): the
// primary is SIGKILLed mid-load, the sentinels promote the replica, the
// orchestrator follows it, every chain SUCCEEDED.
#include <signal.h>

#include <thread>

#include "absl/strings/str_split.h"
#include "orchestrator/redis/redis_connection.h"
#include "tests/integration/redis_failover_fixture.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/redis_node.h"

namespace conveyor::testing {
namespace {

using orchestrator::RedisValue;
using v1::Chain;

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
