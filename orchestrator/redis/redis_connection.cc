#include "orchestrator/redis/redis_connection.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <poll.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "orchestrator/redis/redis_primary_resolver.h"

// The connection and its replies: everything that calls hiredis. URL parsing
// is in redis_url.cc, sentinel discovery in redis_primary_resolver.cc, the
// pool in redis_connection_pool.cc.

namespace conveyor::orchestrator {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using RedisReply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* ctx) const { redisFree(ctx); }
};
using RedisContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

RedisValue Convert(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      v.type = RedisValue::Type::kString;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RedisValue::Type::kStatus;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = RedisValue::Type::kError;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = RedisValue::Type::kInteger;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RedisValue::Type::kArray;
      v.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) v.elements.push_back(Convert(r->element[i]));
      break;
    default:
      v.type = RedisValue::Type::kNil;
  }
  return v;
}

std::string Sha1Hex(absl::string_view text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  std::string hex;
  hex.reserve(2 * SHA_DIGEST_LENGTH);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : digest) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 15]);
  }
  return hex;
}

// hiredis's argv form of a command: pointers into `argv`, which must outlive
// this (arguments are sent binary-safe, never formatted).
class HiredisArgv {
 public:
  explicit HiredisArgv(absl::Span<const std::string> argv) {
    args_.reserve(argv.size());
    lens_.reserve(argv.size());
    for (const std::string& a : argv) {
      args_.push_back(a.data());
      lens_.push_back(a.size());
    }
  }
  int argc() const { return static_cast<int>(args_.size()); }
  const char** argv() { return args_.data(); }
  const size_t* lens() const { return lens_.data(); }

 private:
  std::vector<const char*> args_;
  std::vector<size_t> lens_;
};

}  // namespace

absl::StatusOr<RedisValue> RedisCommandOnce(const RedisAddress& address, absl::Duration timeout,
                                            absl::Span<const std::string> argv) {
  RedisContextPtr ctx(
      redisConnectWithTimeout(address.host.c_str(), address.port, absl::ToTimeval(timeout)));
  if (ctx == nullptr) return absl::UnavailableError("cannot allocate a context");
  if (ctx->err != 0) return absl::UnavailableError(ctx->errstr);
  redisSetTimeout(ctx.get(), absl::ToTimeval(timeout));
  HiredisArgv command(argv);
  RedisReply reply(static_cast<redisReply*>(
      redisCommandArgv(ctx.get(), command.argc(), command.argv(), command.lens())));
  if (reply == nullptr) return absl::UnavailableError(ctx->errstr);
  return Convert(reply.get());
}

absl::Status StatusFromRedisError(absl::string_view text) {
  const absl::string_view code = text.substr(0, text.find(' '));
  // States a healthy deployment passes through: a restart loading its data,
  // a long script, a replica without its primary, a node demoted by a
  // failover, cluster resharding, min-replicas-to-write not met.
  static constexpr absl::string_view kTransient[] = {
      "LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS"};
  if (std::find(std::begin(kTransient), std::end(kTransient), code) != std::end(kTransient) ||
      absl::StartsWith(text, "ERR max number of clients reached")) {
    return absl::UnavailableError(absl::StrCat("redis: ", text));
  }
  if (code == "OOM") return absl::ResourceExhaustedError(absl::StrCat("redis: ", text));
  // The server wants a password this process was not given: a deployment
  // mistake, not a bug, so say what to set (and not Redis's text).
  if (code == "NOAUTH") {
    return absl::UnavailableError(
        "redis requires authentication (NOAUTH) and none was configured: set --redis-user and "
        "--redis-password-file");
  }
  return absl::InternalError(text);
}

bool RedisErrorMeansNotPrimary(absl::string_view text) {
  const absl::string_view code = text.substr(0, text.find(' '));
  return code == "READONLY" || code == "MASTERDOWN";
}

RedisScript::RedisScript(std::string src) : source(std::move(src)), sha1(Sha1Hex(source)) {}

RedisConnection::RedisConnection(RedisEndpoint endpoint, absl::Duration connect_timeout,
                                 absl::Duration command_timeout)
    : RedisConnection(std::move(endpoint), connect_timeout, command_timeout, nullptr) {}

RedisConnection::RedisConnection(RedisEndpoint endpoint, absl::Duration connect_timeout,
                                 absl::Duration command_timeout,
                                 std::shared_ptr<RedisPrimaryResolver> resolver)
    : endpoint_(std::move(endpoint)),
      connect_timeout_(connect_timeout),
      command_timeout_(command_timeout),
      resolver_(std::move(resolver)) {
  if (resolver_ == nullptr && endpoint_.sentinel_managed()) {
    resolver_ = std::make_shared<RedisPrimaryResolver>(endpoint_, connect_timeout_);
  }
  address_ = {endpoint_.host, endpoint_.port};
}

RedisConnection::~RedisConnection() { Disconnect(); }

void RedisConnection::Disconnect() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

absl::Status RedisConnection::IoError(absl::string_view what) {
  std::string detail = ctx_ != nullptr && ctx_->err != 0 ? std::string(ctx_->errstr) : "no reply";
  Disconnect();
  // The primary may have died: find it again before the next attempt.
  if (resolver_ != nullptr) resolver_->Invalidate();
  return absl::UnavailableError(
      absl::StrCat("redis ", FormatRedisAddress(address_), ": ", what, ": ", detail));
}

absl::Status RedisConnection::ErrorReply(const std::string& text) {
  if (resolver_ != nullptr && RedisErrorMeansNotPrimary(text)) {
    // A failover demoted the node this connection talks to.
    Disconnect();
    resolver_->Invalidate();
  }
  return StatusFromRedisError(text);
}

bool RedisConnection::PeerClosed() const {
  // An idle request/reply connection has nothing to read unless the server
  // closed it (restart, failover, idle timeout, CLIENT KILL).
  pollfd pfd{ctx_->fd, POLLIN, 0};
  return ::poll(&pfd, 1, 0) > 0;
}

void RedisConnection::RecheckPrimary() {
  if (resolver_ == nullptr || ctx_ == nullptr) return;
  const absl::Time now = absl::Now();
  if (now < next_recheck_) return;
  next_recheck_ = now + kPrimaryRecheck;
  absl::StatusOr<RedisAddress> primary = resolver_->Current();
  if (primary.ok() && *primary != address_) Disconnect();
}

absl::Status RedisConnection::Connect() {
  if (ctx_ != nullptr) {
    if (!PeerClosed()) return absl::OkStatus();
    Disconnect();
  }
  if (resolver_ != nullptr) {
    absl::StatusOr<RedisAddress> primary = resolver_->Current();
    if (!primary.ok()) return primary.status();
    address_ = *primary;
  }
  ctx_ = redisConnectWithTimeout(address_.host.c_str(), address_.port,
                                 absl::ToTimeval(connect_timeout_));
  if (ctx_ == nullptr) {
    return absl::UnavailableError("redis: cannot allocate a context");
  }
  if (ctx_->err != 0) return IoError("connect");
  redisSetTimeout(ctx_, absl::ToTimeval(command_timeout_));
  if (!endpoint_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!endpoint_.user.empty()) auth.push_back(endpoint_.user);
    auth.push_back(endpoint_.password);
    absl::StatusOr<RedisValue> reply = CommandReply(auth);
    if (!reply.ok()) return reply.status();
    if (reply->is_error()) {
      Disconnect();
      // Our words, not Redis's: its text does not reach callers (only its
      // first word, e.g. WRONGPASS), and never the password.
      const std::string word = reply->str.substr(0, reply->str.find(' '));
      return absl::UnavailableError(absl::StrCat(
          "redis ", FormatRedisAddress(address_), " refused AUTH as user \"",
          endpoint_.user.empty() ? "default" : endpoint_.user, "\" (", word,
          "): check --redis-user and --redis-password-file"));
    }
  }
  if (endpoint_.db != 0) {
    absl::StatusOr<RedisValue> reply = CommandReply({"SELECT", std::to_string(endpoint_.db)});
    if (!reply.ok()) return reply.status();
    if (reply->is_error()) {
      Disconnect();
      return absl::UnavailableError(
          absl::StrCat("redis SELECT ", endpoint_.db, " failed: ", reply->str));
    }
  }
  if (resolver_ != nullptr) {
    // A sentinel's answer can be stale for a moment around a failover;
    // writing to a replica would only fail, so check before using it.
    absl::StatusOr<RedisValue> role = CommandReply({"ROLE"});
    if (!role.ok()) return role.status();
    if (role->is_error() || !role->is_array() || role->elements.empty() ||
        role->elements[0].str != "master") {
      const std::string seen = role->is_error()                ? role->str
                               : role->is_array() && !role->elements.empty() ? role->elements[0].str
                                                                             : "?";
      Disconnect();
      resolver_->Invalidate();
      return absl::UnavailableError(absl::StrCat(
          "redis ", FormatRedisAddress(address_), " is not the primary of \"",
          endpoint_.master_name, "\" (ROLE ", seen, "); a failover is under way"));
    }
    next_recheck_ = absl::Now() + kPrimaryRecheck;
  }
  return absl::OkStatus();
}

absl::StatusOr<RedisValue> RedisConnection::ReadReply() {
  void* raw = nullptr;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return IoError("read");
  RedisReply reply(static_cast<redisReply*>(raw));
  return Convert(reply.get());
}

absl::StatusOr<RedisValue> RedisConnection::CommandReply(absl::Span<const std::string> argv) {
  HiredisArgv command(argv);
  void* raw = redisCommandArgv(ctx_, command.argc(), command.argv(), command.lens());
  if (raw == nullptr) return IoError(argv.empty() ? "command" : argv[0]);
  RedisReply reply(static_cast<redisReply*>(raw));
  return Convert(reply.get());
}

absl::StatusOr<RedisValue> RedisConnection::Command(absl::Span<const std::string> argv) {
  RecheckPrimary();
  if (absl::Status s = Connect(); !s.ok()) return s;
  absl::StatusOr<RedisValue> value = CommandReply(argv);
  if (!value.ok()) return value.status();
  if (value->is_error()) return ErrorReply(value->str);
  return value;
}

absl::StatusOr<std::vector<RedisValue>> RedisConnection::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  RecheckPrimary();
  if (absl::Status s = Connect(); !s.ok()) return s;
  for (const auto& argv : commands) {
    HiredisArgv command(argv);
    if (redisAppendCommandArgv(ctx_, command.argc(), command.argv(), command.lens()) != REDIS_OK) {
      return IoError("pipeline append");
    }
  }
  std::vector<RedisValue> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    absl::StatusOr<RedisValue> reply = ReadReply();
    if (!reply.ok()) return reply.status();
    replies.push_back(*std::move(reply));
  }
  for (const RedisValue& reply : replies) {
    if (reply.is_error() && StatusFromRedisError(reply.str).code() == absl::StatusCode::kUnavailable) {
      return ErrorReply(reply.str);
    }
  }
  return replies;
}

absl::StatusOr<RedisValue> RedisConnection::Eval(const RedisScript& script,
                                                 absl::Span<const std::string> keys,
                                                 absl::Span<const std::string> args) {
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(script.sha1);
  argv.push_back(std::to_string(keys.size()));
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  RecheckPrimary();
  if (absl::Status s = Connect(); !s.ok()) return s;
  absl::StatusOr<RedisValue> reply = CommandReply(argv);
  if (!reply.ok()) return reply.status();
  // A restarted (or failed-over-to) Redis has no scripts cached yet.
  if (reply->is_error() && absl::StartsWith(reply->str, "NOSCRIPT")) {
    absl::StatusOr<RedisValue> loaded = Command({"SCRIPT", "LOAD", script.source});
    if (!loaded.ok()) return loaded.status();
    reply = CommandReply(argv);
    if (!reply.ok()) return reply.status();
  }
  if (reply->is_error()) return ErrorReply(reply->str);
  return reply;
}

absl::StatusOr<absl::optional<RedisValue>> RedisConnection::ReadPush(absl::Duration timeout) {
  if (ctx_ == nullptr) return absl::UnavailableError("redis: subscription connection lost");
  if (resolver_ != nullptr && absl::Now() >= next_recheck_) {
    // A demoted primary keeps its subscribers (CLIENT KILL TYPE normal spares
    // them): leave it for the new one.
    next_recheck_ = absl::Now() + kPrimaryRecheck;
    absl::StatusOr<RedisAddress> primary = resolver_->Current();
    if (primary.ok() && *primary != address_) {
      Disconnect();
      return absl::UnavailableError(absl::StrCat("redis: the primary of \"",
                                                 endpoint_.master_name, "\" moved to ",
                                                 FormatRedisAddress(*primary),
                                                 "; subscribe again"));
    }
  }
  void* raw = nullptr;
  if (redisGetReplyFromReader(ctx_, &raw) != REDIS_OK) return IoError("read");
  if (raw == nullptr) {
    pollfd pfd{ctx_->fd, POLLIN, 0};
    int ready = poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    if (ready == 0) return absl::optional<RedisValue>();
    if (ready < 0) return absl::optional<RedisValue>();  // EINTR: caller loops
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return IoError("read");
  }
  RedisReply reply(static_cast<redisReply*>(raw));
  return absl::optional<RedisValue>(Convert(reply.get()));
}

}  // namespace conveyor::orchestrator
