// A blocking connection to one Redis server, and a small pool of them.
//
// redis_connection.cc is the only file that includes hiredis. Replies are
// copied into RedisValue (an owned tree), so no hiredis type leaks out. The
// rest of this header is defined by job: redis_url.cc (--redis-url parsing),
// redis_primary_resolver.cc (Sentinel discovery), redis_connection_pool.cc.
//
// Errors (StatusFromRedisError is the one classification):
//   - transport problems (connect refused, timeout, connection reset) and the
//     error replies a healthy Redis gives while it cannot serve for a while
//     (LOADING, BUSY, MASTERDOWN, READONLY, TRYAGAIN, CLUSTERDOWN) are
//     UNAVAILABLE: retry later, the next call reconnects;
//   - OOM (maxmemory reached with noeviction) is RESOURCE_EXHAUSTED;
//   - NOAUTH (the server wants a password this process lacks) and a refused
//     AUTH (WRONGPASS) are UNAVAILABLE with our own message naming the
//     flags to set, not Redis's text;
//   - any other error reply (a script's own error_reply, a wrong type, ...)
//     is INTERNAL with Redis's text.
// No message ever contains the password.
//
// Sentinel: an endpoint that names sentinels (redis-sentinel://...) finds the
// primary by asking them (SENTINEL get-master-addr-by-name), checks ROLE is
// master before using a connection, and finds it again after connection loss,
// a READONLY reply, or when a periodic re-check (kPrimaryRecheck) sees the
// sentinels name another address; pooled and subscribe connections alike.
//
// Thread-safety: a RedisConnection is not thread-safe; use one per thread
// (RedisConnectionPool hands them out to handler threads). The pool and the
// primary resolver it shares with its connections are thread-safe.
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_REDIS_CONNECTION_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_REDIS_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "absl/types/span.h"

struct redisContext;

namespace conveyor::orchestrator {

struct RedisAddress {
  std::string host;
  int port = 0;
  bool operator==(const RedisAddress& o) const { return host == o.host && port == o.port; }
  bool operator!=(const RedisAddress& o) const { return !(*this == o); }
};

// "host:port", "[v6]:port" for IPv6 literals.
std::string FormatRedisAddress(const RedisAddress& address);

// Parsed --redis-url. Two forms:
//   redis://[[user]:password@]host[:port][/db]                 one server
//   redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db]
// In the sentinel form the hosts are sentinels (port 26379 by default), the
// master is the name they monitor, and user/password are for the data nodes
// (the sentinels are asked without AUTH). IPv6 literals go in brackets.
struct RedisEndpoint {
  std::string host = "127.0.0.1";  // redis:// only
  int port = 6379;                 // redis:// only
  std::string user;
  std::string password;
  int db = 0;
  std::vector<RedisAddress> sentinels;  // redis-sentinel:// only
  std::string master_name;              // redis-sentinel:// only

  bool sentinel_managed() const { return !sentinels.empty(); }
  // For logs: "127.0.0.1:6379/0" or "sentinel:mymaster@h1:26379,h2:26379/0".
  // Never the password.
  std::string Describe() const;
};

// INVALID_ARGUMENT naming what is wrong with `url`; the message never
// contains the password (nor anything that could be one, such as the text
// after a ':' when the '@' that would end a password is missing).
absl::StatusOr<RedisEndpoint> ParseRedisUrl(absl::string_view url);

// `url` with everything before its last '@' past the scheme replaced by
// "***", e.g. "redis://***@host:6379". For messages that must show a URL.
std::string RedactRedisUrl(absl::string_view url);

// The status for a Redis error reply `text` (as sent by Redis, e.g.
// "LOADING Redis is loading the dataset in memory"): see the file comment.
// The error code is the first word, matched whole ("BUSYGROUP" is not BUSY).
absl::Status StatusFromRedisError(absl::string_view text);

// True for the error replies that mean "this node is not (or no longer) the
// primary": a sentinel-managed connection finds the primary again.
bool RedisErrorMeansNotPrimary(absl::string_view text);

// One reply, owned.
struct RedisValue {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };
  Type type = Type::kNil;
  std::string str;          // kString, kStatus, kError
  int64_t integer = 0;      // kInteger
  std::vector<RedisValue> elements;  // kArray

  bool is_nil() const { return type == Type::kNil; }
  bool is_error() const { return type == Type::kError; }
  bool is_array() const { return type == Type::kArray; }
};

// A Lua script run by EVALSHA (loaded on NOSCRIPT).
struct RedisScript {
  explicit RedisScript(std::string source);
  std::string source;
  std::string sha1;  // lowercase hex of SHA-1(source)
};

// Finds the primary of a sentinel-managed endpoint; shared by the connections
// of one pool so the sentinels are asked about once per kPrimaryRecheck per
// process, not per connection. Thread-safe. Private to conveyor_redis
// (redis_primary_resolver.h).
class RedisPrimaryResolver;

// How often a sentinel-managed connection checks that the sentinels still
// name the address it is connected to (besides on errors).
inline constexpr absl::Duration kPrimaryRecheck = absl::Seconds(1);

class RedisConnection {
 public:
  RedisConnection(RedisEndpoint endpoint, absl::Duration connect_timeout,
                  absl::Duration command_timeout);
  // With the resolver of a pool (sentinel-managed endpoints); nullptr makes
  // one of its own if the endpoint needs it.
  RedisConnection(RedisEndpoint endpoint, absl::Duration connect_timeout,
                  absl::Duration command_timeout, std::shared_ptr<RedisPrimaryResolver> resolver);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Connects (resolve the primary, AUTH, SELECT, ROLE) if not connected, or
  // if the server closed the idle connection. UNAVAILABLE on failure.
  absl::Status Connect();
  bool connected() const { return ctx_ != nullptr; }

  // One command; arguments are sent binary-safe (never formatted). An error
  // reply becomes StatusFromRedisError(text).
  absl::StatusOr<RedisValue> Command(absl::Span<const std::string> argv);
  absl::StatusOr<RedisValue> Command(std::initializer_list<std::string> argv) {
    return Command(absl::MakeConstSpan(argv.begin(), argv.size()));
  }

  // Sends every command, then reads every reply: one round trip. Error
  // replies are returned in place (RedisValue::Type::kError), not as Status,
  // except the transient ones (StatusFromRedisError says UNAVAILABLE): then
  // the whole pipeline is UNAVAILABLE, as it would be had the connection
  // dropped; retry it whole.
  absl::StatusOr<std::vector<RedisValue>> Pipeline(
      const std::vector<std::vector<std::string>>& commands);

  // EVALSHA, falling back to SCRIPT LOAD + EVALSHA on NOSCRIPT.
  absl::StatusOr<RedisValue> Eval(const RedisScript& script,
                                  absl::Span<const std::string> keys,
                                  absl::Span<const std::string> args);

  // For SUBSCRIBE connections: waits up to `timeout` for the next pushed
  // message. nullopt on timeout. UNAVAILABLE (disconnected) on connection
  // loss, and when the primary moved (sentinel): subscribe again.
  absl::StatusOr<absl::optional<RedisValue>> ReadPush(absl::Duration timeout);

  // Drops the connection (the next call reconnects).
  void Disconnect();

 private:
  absl::StatusOr<RedisValue> ReadReply();
  absl::StatusOr<RedisValue> CommandReply(absl::Span<const std::string> argv);
  absl::Status ErrorReply(const std::string& text);
  absl::Status IoError(absl::string_view what);
  // Drops the connection if its primary is no longer the sentinels' choice.
  void RecheckPrimary();
  // True if the idle connection has something to read: the server closed it.
  bool PeerClosed() const;

  RedisEndpoint endpoint_;
  absl::Duration connect_timeout_;
  absl::Duration command_timeout_;
  std::shared_ptr<RedisPrimaryResolver> resolver_;  // null unless sentinel-managed
  RedisAddress address_;                            // where ctx_ is connected
  absl::Time next_recheck_ = absl::InfinitePast();
  redisContext* ctx_ = nullptr;
};

// A stack of idle connections. Acquire() reuses one or creates one; the lease
// returns it on destruction (dropped instead if it lost its connection).
class RedisConnectionPool {
 public:
  RedisConnectionPool(RedisEndpoint endpoint, absl::Duration connect_timeout,
                      absl::Duration command_timeout, size_t max_idle = 16);
  ~RedisConnectionPool();

  class Lease {
   public:
    Lease(RedisConnectionPool* pool, std::unique_ptr<RedisConnection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = default;
    ~Lease();
    RedisConnection* operator->() { return conn_.get(); }
    RedisConnection& operator*() { return *conn_; }

   private:
    RedisConnectionPool* pool_;
    std::unique_ptr<RedisConnection> conn_;
  };

  Lease Acquire();
  // A new connection that is not pooled (for blocking reads and SUBSCRIBE);
  // it follows the same primary as the pool.
  std::unique_ptr<RedisConnection> NewConnection(absl::Duration command_timeout) const;

 private:
  void Release(std::unique_ptr<RedisConnection> conn);

  RedisEndpoint endpoint_;
  absl::Duration connect_timeout_;
  absl::Duration command_timeout_;
  size_t max_idle_;
  std::shared_ptr<RedisPrimaryResolver> resolver_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<RedisConnection>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_REDIS_CONNECTION_H_
