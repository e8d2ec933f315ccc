// RedisConnection: URL parsing (both forms, never echoing the password), the
// error classification, and against a real redis-server on loopback the
// cases where a healthy Redis cannot serve for a while.
#include "orchestrator/redis/redis_connection.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/redis_node.h"

namespace conveyor::orchestrator {
namespace {

TEST(StatusFromRedisErrorTest, ServerStatesThatPassAreUnavailable) {
  for (const char* text : {
           "LOADING Redis is loading the dataset in memory",
           "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
           "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
           "READONLY You can't write against a read only replica.",
           "TRYAGAIN Multiple keys request during rehashing of slot",
           "CLUSTERDOWN The cluster is down",
           "NOREPLICAS Not enough good replicas to write.",
           "ERR max number of clients reached",
       }) {
    absl::Status status = StatusFromRedisError(text);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << text;
    EXPECT_TRUE(absl::StrContains(status.message(), text)) << status;
  }
}

TEST(StatusFromRedisErrorTest, OutOfMemoryIsResourceExhausted) {
  EXPECT_EQ(StatusFromRedisError("OOM command not allowed when used memory > 'maxmemory'.").code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(StatusFromRedisErrorTest, OtherRepliesStayInternalWithRedisText) {
  // The store matches these texts (BUSYGROUP, NOGROUP), so they are kept
  // verbatim; a prefix that merely starts like a transient code is not one.
  for (const char* text : {"BUSYGROUP Consumer Group name already exists",
                           "NOGROUP No such key 'cv:ready' or consumer group",
                           "apply.lua: bad mode nope",
                           "NOSCRIPT No matching script. Please use EVAL.",
                           "WRONGTYPE Operation against a key holding the wrong kind of value",
                           "ERR Invalid stream ID specified as stream command argument",
                           "LOADINGX not a real code", "READONLYISH", ""}) {
    absl::Status status = StatusFromRedisError(text);
    EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << text;
    EXPECT_EQ(status.message(), text);
  }
}

TEST(StatusFromRedisErrorTest, NotPrimaryCodes) {
  EXPECT_TRUE(RedisErrorMeansNotPrimary("READONLY You can't write against a read only replica."));
  EXPECT_TRUE(RedisErrorMeansNotPrimary("MASTERDOWN Link with MASTER is down"));
  EXPECT_FALSE(RedisErrorMeansNotPrimary("LOADING Redis is loading the dataset in memory"));
  EXPECT_FALSE(RedisErrorMeansNotPrimary("READONLYX"));
}

TEST(RedisUrlTest, SingleServerForms) {
  absl::StatusOr<RedisEndpoint> e = ParseRedisUrl("redis://127.0.0.1");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 6379);
  EXPECT_FALSE(e->sentinel_managed());
  absl::StatusOr<RedisEndpoint> v6 = ParseRedisUrl("redis://:p@ss@[::1]:6380/4");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 6380);
  EXPECT_EQ(v6->password, "p@ss");  // the last '@' ends the password
  EXPECT_EQ(v6->db, 4);
  EXPECT_EQ(v6->Describe(), "[::1]:6380/4");
}

TEST(RedisUrlTest, SentinelForm) {
  absl::StatusOr<RedisEndpoint> e =
      ParseRedisUrl("redis-sentinel://app:s3cret@h1:26380,h2,[::1]:26381/mymaster/2");
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_TRUE(e->sentinel_managed());
  ASSERT_EQ(e->sentinels.size(), 3u);
  EXPECT_EQ(e->sentinels[0], (RedisAddress{"h1", 26380}));
  EXPECT_EQ(e->sentinels[1], (RedisAddress{"h2", 26379}));
  EXPECT_EQ(e->sentinels[2], (RedisAddress{"::1", 26381}));
  EXPECT_EQ(e->master_name, "mymaster");
  EXPECT_EQ(e->user, "app");
  EXPECT_EQ(e->password, "s3cret");
  EXPECT_EQ(e->db, 2);
  EXPECT_EQ(e->Describe(), "sentinel:mymaster@h1:26380,h2:26379,[::1]:26381/2");
  absl::StatusOr<RedisEndpoint> plain = ParseRedisUrl("redis-sentinel://127.0.0.1:5000/m-1.a_b");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->master_name, "m-1.a_b");
  EXPECT_EQ(plain->db, 0);
}

TEST(RedisUrlTest, MalformedUrlsNameTheProblem) {
  struct Case {
    const char* url;
    const char* says;
  };
  for (const Case& c : {
           Case{"http://x:1", "want redis://"},
           Case{"redis://x:99999", "port must be 1..65535, got \"99999\""},
           Case{"redis://x:1/abc", "database must be a number >= 0, got \"abc\""},
           Case{"redis://x:1/2/3", "at most /db"},
           Case{"redis://", "no host"},
           Case{"redis://a:1,b:2", "several hosts need the redis-sentinel:// form"},
           Case{"redis://::1:6379", "brackets"},
           Case{"redis://[::1:6379", "closing ']'"},
           Case{"redis-sentinel://h1:26379", "needs the master's name"},
           Case{"redis-sentinel://h1:26379/", "needs the master's name"},
           Case{"redis-sentinel://h1/bad name", "master name may hold"},
           Case{"redis-sentinel://h1/m/x", "database must be a number"},
           Case{"redis-sentinel://h1/m/1/2", "/master[/db]"},
           Case{"redis-sentinel:///m", "at least one sentinel"},
           Case{"redis-sentinel://h1,,h2/m", "no host"},
       }) {
    absl::StatusOr<RedisEndpoint> e = ParseRedisUrl(c.url);
    ASSERT_FALSE(e.ok()) << c.url;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << c.url;
    EXPECT_TRUE(absl::StrContains(e.status().message(), c.says)) << c.url << ": " << e.status();
    EXPECT_TRUE(absl::StartsWith(e.status().message(), "--redis-url: ")) << e.status();
  }
}

// Issue 10: a malformed --redis-url used to be echoed whole, password and all.
TEST(RedisUrlTest, NoMessageContainsThePassword) {
  for (const char* url : {
           "http://:s3cret@host:1",
           "rediss://user:s3cret@host:6379",
           "redis//:s3cret@host",
           "redis://:s3cret@host:port",
           "redis://:s3cret@host:1/db",
           "redis://:s3cret@",
           "redis://user:s3cret@a:1,b:2",
           "redis://:s3cret",          // the '@host' forgotten: reads as port "s3cret"
           "redis://user:s3cret/0",    // likewise, with a db
           "redis://localhost:s3cret",
           "redis-sentinel://:s3cret@h1:26379",
           "redis-sentinel://:s3cret@h1:x/m",
           "redis-sentinel://:s3cret@/m",
           "redis-sentinel://h1:s3cret/m",
           "redis-sentinel://:s3cret@h1/bad name",
       }) {
    absl::StatusOr<RedisEndpoint> e = ParseRedisUrl(url);
    ASSERT_FALSE(e.ok()) << url;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_FALSE(absl::StrContains(e.status().ToString(), "s3cret")) << e.status();
    EXPECT_FALSE(absl::StrContains(RedactRedisUrl(url), "s3cret")) << RedactRedisUrl(url);
  }
  absl::StatusOr<RedisEndpoint> ok = ParseRedisUrl("redis-sentinel://u:s3cret@h1/m");
  ASSERT_TRUE(ok.ok());
  EXPECT_FALSE(absl::StrContains(ok->Describe(), "s3cret"));
  EXPECT_EQ(RedactRedisUrl("redis://u:s3cret@h:1/2"), "redis://***@h:1/2");
  EXPECT_EQ(RedactRedisUrl("redis://h:6379/2"), "redis://h:6379/2");
  EXPECT_EQ(RedactRedisUrl("redis://[::1]:6379"), "redis://[::1]:6379");
}

TEST(RedisUrlTest, WrongPasswordMessageHasNoPassword) {
  conveyor::testing::RedisServer redis;  // no password: AUTH of one fails
  RedisEndpoint e = *ParseRedisUrl(absl::StrCat("redis://:s3cret@127.0.0.1:", redis.port()));
  RedisConnection conn(e, absl::Seconds(1), absl::Seconds(1));
  absl::Status status = conn.Connect();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(absl::StrContains(status.ToString(), "s3cret")) << status;
  // Our words and the flags to check, not Redis's reply (tests/orchestrator/redis_acl_test.cc
  // has the ACL cases).
  EXPECT_TRUE(absl::StrContains(status.message(), "refused AUTH")) << status;
  EXPECT_FALSE(absl::StrContains(status.message(), "without any password configured")) << status;
}

TEST(StatusFromRedisErrorTest, NoauthNamesTheFlagsNotRedisText) {
  absl::Status status = StatusFromRedisError("NOAUTH Authentication required.");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(status.message(), "--redis-password-file")) << status;
  EXPECT_FALSE(absl::StrContains(status.message(), "Authentication required")) << status;
}

class RedisConnectionTest : public ::testing::Test {
 protected:
  RedisEndpoint Endpoint() const { return *ParseRedisUrl(redis_.url()); }
  conveyor::testing::RedisServer redis_;
};

TEST_F(RedisConnectionTest, BusyScriptIsUnavailableThenServes) {
  RedisConnection setup(Endpoint(), absl::Seconds(1), absl::Seconds(2));
  // Past this, other clients get BUSY instead of waiting for the script.
  ASSERT_TRUE(setup.Command({"CONFIG", "SET", "busy-reply-threshold", "50"}).ok());
  // A script that spins ~600 ms (bounded by Redis's own clock).
  std::thread spinner([&] {
    RedisConnection conn(Endpoint(), absl::Seconds(1), absl::Seconds(5));
    absl::StatusOr<RedisValue> r = conn.Command(
        {"EVAL",
         "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2] "
         "repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] > s + 600000 return 1",
         "0"});
    EXPECT_TRUE(r.ok()) << r.status();
  });
  RedisConnection other(Endpoint(), absl::Seconds(1), absl::Seconds(2));
  absl::Status seen = absl::OkStatus();
  const absl::Time until = absl::Now() + absl::Seconds(3);
  while (absl::Now() < until) {
    absl::StatusOr<RedisValue> r = other.Command({"GET", "k"});
    if (!r.ok()) {
      seen = r.status();
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  spinner.join();
  EXPECT_EQ(seen.code(), absl::StatusCode::kUnavailable) << seen;
  EXPECT_TRUE(absl::StrContains(seen.message(), "BUSY")) << seen;
  EXPECT_TRUE(other.Command({"GET", "k"}).ok());  // serves again once the script ends
}

TEST_F(RedisConnectionTest, WritesToAReplicaAreUnavailable) {
  conveyor::testing::RedisServer replica_server;
  RedisConnection replica(*ParseRedisUrl(replica_server.url()), absl::Seconds(1),
                          absl::Seconds(2));
  ASSERT_TRUE(replica.Command({"REPLICAOF", "127.0.0.1", std::to_string(redis_.port())}).ok());
  absl::StatusOr<RedisValue> write = replica.Command({"SET", "k", "v"});
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.status().code(), absl::StatusCode::kUnavailable) << write.status();
  // Also inside a pipeline: the whole pipeline is UNAVAILABLE.
  absl::StatusOr<std::vector<RedisValue>> pipe =
      replica.Pipeline({{"GET", "k"}, {"SET", "k", "v"}});
  EXPECT_EQ(pipe.status().code(), absl::StatusCode::kUnavailable) << pipe.status();
  // Other error replies in a pipeline stay in place.
  RedisConnection primary(Endpoint(), absl::Seconds(1), absl::Seconds(2));
  absl::StatusOr<std::vector<RedisValue>> mixed =
      primary.Pipeline({{"SET", "s", "1"}, {"HGET", "s", "f"}});
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_TRUE((*mixed)[1].is_error());
}

TEST_F(RedisConnectionTest, IdleConnectionClosedByServerReconnectsBeforeSending) {
  RedisConnectionPool pool(Endpoint(), absl::Seconds(1), absl::Seconds(2));
  {
    auto lease = pool.Acquire();
    ASSERT_TRUE(lease->Command({"SET", "k", "v"}).ok());
  }  // back to the pool, idle
  RedisConnection killer(Endpoint(), absl::Seconds(1), absl::Seconds(2));
  absl::StatusOr<RedisValue> killed =
      killer.Command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
  ASSERT_TRUE(killed.ok()) << killed.status();
  ASSERT_GE(killed->integer, 1);
  // What a restart or a failover does to idle connections: the next user
  // gets a working one, not an error.
  absl::SleepFor(absl::Milliseconds(50));  // let the FIN arrive
  auto lease = pool.Acquire();
  absl::StatusOr<RedisValue> got = lease->Command({"GET", "k"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->str, "v");
}

TEST_F(RedisConnectionTest, ScriptErrorsStayInternal) {
  RedisConnection conn(Endpoint(), absl::Seconds(1), absl::Seconds(2));
  RedisScript script("return redis.error_reply('apply.lua: bad mode x')");
  absl::StatusOr<RedisValue> r = conn.Eval(script, {}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(r.status().message(), "apply.lua: bad mode x");
}

// A graceful failover (SENTINEL FAILOVER): the old primary stays up as a
// replica. Pooled connections move to the new primary, seeing at most
// UNAVAILABLE meanwhile, and so does a subscriber, which the demoted primary
// would otherwise keep (CLIENT KILL TYPE normal spares pub/sub clients).
TEST(SentinelTest, PoolAndSubscriberFollowAManualFailover) {
  using conveyor::testing::RedisCall;
  using conveyor::testing::RedisNode;
  using conveyor::testing::ReplyField;
  conveyor::testing::TempDir dir;
  std::mt19937 rng(static_cast<uint32_t>(::getpid() ^ absl::ToUnixNanos(absl::Now())));
  auto a = RedisNode::Start("/usr/bin/redis-server", dir.path(), "a",
                            {"dir " + dir.path(), "save \"\"", "appendonly no"}, rng);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = RedisNode::Start("/usr/bin/redis-server", dir.path(), "b",
                            {"dir " + dir.path(), "save \"\"", "appendonly no",
                             absl::StrCat("replicaof 127.0.0.1 ", (*a)->port())},
                            rng);
  ASSERT_TRUE(b.ok()) << b.status();
  auto sentinel = RedisNode::Start(
      "/usr/bin/redis-sentinel", dir.path(), "sentinel",
      {"dir " + dir.path(), absl::StrCat("sentinel monitor m 127.0.0.1 ", (*a)->port(), " 1"),
       "sentinel down-after-milliseconds m 1000", "sentinel failover-timeout m 5000"},
      rng);
  ASSERT_TRUE(sentinel.ok()) << sentinel.status();
  // Until the sentinel knows the replica (else it has nothing to promote).
  bool knows = false;
  for (absl::Time until = absl::Now() + absl::Seconds(20); !knows && absl::Now() < until;) {
    absl::StatusOr<RedisValue> m = RedisCall((*sentinel)->port(), {"SENTINEL", "master", "m"});
    absl::StatusOr<RedisValue> info = RedisCall((*b)->port(), {"INFO", "replication"});
    knows = m.ok() && ReplyField(*m, "num-slaves") == "1" && info.ok() &&
            conveyor::testing::InfoField(info->str, "master_link_status") == "up";
    if (!knows) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(knows) << "the sentinel never saw the replica";

  RedisConnectionPool pool(
      *ParseRedisUrl(absl::StrCat("redis-sentinel://127.0.0.1:", (*sentinel)->port(), "/m")),
      absl::Milliseconds(500), absl::Seconds(2));
  {
    auto lease = pool.Acquire();
    ASSERT_TRUE(lease->Command({"SET", "k", "before"}).ok());
  }
  std::unique_ptr<RedisConnection> subscriber = pool.NewConnection(absl::Seconds(2));
  ASSERT_TRUE(subscriber->Command({"SUBSCRIBE", "ch"}).ok());

  absl::StatusOr<RedisValue> failover =
      RedisCall((*sentinel)->port(), {"SENTINEL", "FAILOVER", "m"});
  ASSERT_TRUE(failover.ok()) << failover.status();

  // Writes go on (after a few UNAVAILABLE at most) and land on b.
  absl::Status last = absl::UnknownError("no write tried");
  int i = 0;
  for (absl::Time until = absl::Now() + absl::Seconds(20); absl::Now() < until; ++i) {
    auto lease = pool.Acquire();
    absl::StatusOr<RedisValue> set = lease->Command({"SET", "k", absl::StrCat("after-", i)});
    last = set.status();
    if (!set.ok()) {
      EXPECT_EQ(set.status().code(), absl::StatusCode::kUnavailable) << set.status();
    }
    absl::StatusOr<RedisValue> role = RedisCall((*b)->port(), {"ROLE"});
    if (set.ok() && role.ok() && role->elements[0].str == "master") {
      absl::StatusOr<RedisValue> on_b = RedisCall((*b)->port(), {"GET", "k"});
      if (on_b.ok() && on_b->str == absl::StrCat("after-", i)) break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(last.ok()) << last;
  absl::StatusOr<RedisValue> on_b = RedisCall((*b)->port(), {"GET", "k"});
  ASSERT_TRUE(on_b.ok());
  EXPECT_EQ(on_b->str, absl::StrCat("after-", i)) << "the pool does not write to the new primary";

  // The subscriber leaves the demoted primary within the re-check period,
  // and a fresh subscription hears what is published on the new one.
  absl::Status dropped = absl::OkStatus();
  for (absl::Time until = absl::Now() + 3 * kPrimaryRecheck + absl::Seconds(1);
       dropped.ok() && absl::Now() < until;) {
    dropped = subscriber->ReadPush(absl::Milliseconds(100)).status();
  }
  EXPECT_EQ(dropped.code(), absl::StatusCode::kUnavailable) << dropped;
  EXPECT_TRUE(absl::StrContains(dropped.message(), "moved")) << dropped;
  subscriber = pool.NewConnection(absl::Seconds(2));
  ASSERT_TRUE(subscriber->Command({"SUBSCRIBE", "ch"}).ok());
  {
    auto lease = pool.Acquire();
    ASSERT_TRUE(lease->Command({"PUBLISH", "ch", "hello"}).ok());
  }
  absl::StatusOr<absl::optional<RedisValue>> message = subscriber->ReadPush(absl::Seconds(2));
  ASSERT_TRUE(message.ok()) << message.status();
  ASSERT_TRUE(message->has_value());
  EXPECT_EQ((**message).elements[2].str, "hello");
}

}  // namespace
}  // namespace conveyor::orchestrator
