// A blocking connection to one Redis server, and a small pool of them.
//
// This file pair is the only place that includes hiredis. Replies are copied
// into RedisValue (an owned tree), so no hiredis type leaks out. Every
// transport problem (connect refused, timeout, connection reset) is
// UNAVAILABLE; the next call reconnects. An error *reply* from Redis (e.g. a
// script's error_reply) is INTERNAL with Redis's text, unless noted.
//
// Thread-safety: a RedisConnection is not thread-safe; use one per thread
// (RedisConnectionPool hands them out to handler threads).
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

// redis://[:password@]host:port[/db]  (also redis://user:password@...).
struct RedisEndpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;
};

// INVALID_ARGUMENT naming what is wrong with `url`.
absl::StatusOr<RedisEndpoint> ParseRedisUrl(absl::string_view url);

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

class RedisConnection {
 public:
  RedisConnection(RedisEndpoint endpoint, absl::Duration connect_timeout,
                  absl::Duration command_timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Connects (AUTH, SELECT) if not connected. UNAVAILABLE on failure.
  absl::Status Connect();
  bool connected() const { return ctx_ != nullptr; }

  // One command; arguments are sent binary-safe (never formatted). An error
  // reply becomes INTERNAL("<redis error text>").
  absl::StatusOr<RedisValue> Command(absl::Span<const std::string> argv);
  absl::StatusOr<RedisValue> Command(std::initializer_list<std::string> argv) {
    return Command(absl::MakeConstSpan(argv.begin(), argv.size()));
  }

  // Sends every command, then reads every reply: one round trip. Error
  // replies are returned in place (RedisValue::Type::kError), not as Status.
  absl::StatusOr<std::vector<RedisValue>> Pipeline(
      const std::vector<std::vector<std::string>>& commands);

  // EVALSHA, falling back to SCRIPT LOAD + EVALSHA on NOSCRIPT.
  absl::StatusOr<RedisValue> Eval(const RedisScript& script,
                                  absl::Span<const std::string> keys,
                                  absl::Span<const std::string> args);

  // For SUBSCRIBE connections: waits up to `timeout` for the next pushed
  // message. nullopt on timeout.
  absl::StatusOr<absl::optional<RedisValue>> ReadPush(absl::Duration timeout);

  // Drops the connection (the next call reconnects).
  void Disconnect();

 private:
  absl::StatusOr<RedisValue> ReadReply();
  absl::Status IoError(absl::string_view what);

  RedisEndpoint endpoint_;
  absl::Duration connect_timeout_;
  absl::Duration command_timeout_;
  redisContext* ctx_ = nullptr;
};

// A stack of idle connections. Acquire() reuses one or creates one; the lease
// returns it on destruction (dropped instead if it lost its connection).
class RedisConnectionPool {
 public:
  RedisConnectionPool(RedisEndpoint endpoint, absl::Duration connect_timeout,
                      absl::Duration command_timeout, size_t max_idle = 16);

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
  // A new connection that is not pooled (for blocking reads and SUBSCRIBE).
  std::unique_ptr<RedisConnection> NewConnection(absl::Duration command_timeout) const;
  const RedisEndpoint& endpoint() const { return endpoint_; }

 private:
  void Release(std::unique_ptr<RedisConnection> conn);

  RedisEndpoint endpoint_;
  absl::Duration connect_timeout_;
  absl::Duration command_timeout_;
  size_t max_idle_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<RedisConnection>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_REDIS_CONNECTION_H_
