#include "orchestrator/redis/redis_connection.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <poll.h>

#include <cstdio>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace conveyor::orchestrator {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using RedisReply = std::unique_ptr<redisReply, ReplyDeleter>;

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

}  // namespace

absl::StatusOr<RedisEndpoint> ParseRedisUrl(absl::string_view url) {
  RedisEndpoint endpoint;
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "redis://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--redis-url: want redis://[:password@]host:port[/db], got \"", url, "\""));
  }
  size_t at = rest.rfind('@');
  if (at != absl::string_view::npos) {
    absl::string_view userinfo = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == absl::string_view::npos) {
      endpoint.password = std::string(userinfo);
    } else {
      endpoint.user = std::string(userinfo.substr(0, colon));
      endpoint.password = std::string(userinfo.substr(colon + 1));
    }
  }
  size_t slash = rest.find('/');
  if (slash != absl::string_view::npos) {
    absl::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty() && (!absl::SimpleAtoi(db, &endpoint.db) || endpoint.db < 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--redis-url: database must be a number >= 0, got \"", db, "\""));
    }
  }
  size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos && rest.find(']') == absl::string_view::npos) {
    endpoint.host = std::string(rest.substr(0, colon));
    if (!absl::SimpleAtoi(rest.substr(colon + 1), &endpoint.port) || endpoint.port <= 0 ||
        endpoint.port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("--redis-url: port must be 1..65535, got \"", rest.substr(colon + 1), "\""));
    }
  } else if (!rest.empty()) {
    endpoint.host = std::string(rest);
  }
  if (endpoint.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--redis-url: no host in \"", url, "\""));
  }
  return endpoint;
}

RedisScript::RedisScript(std::string src) : source(std::move(src)), sha1(Sha1Hex(source)) {}

RedisConnection::RedisConnection(RedisEndpoint endpoint, absl::Duration connect_timeout,
                                 absl::Duration command_timeout)
    : endpoint_(std::move(endpoint)),
      connect_timeout_(connect_timeout),
      command_timeout_(command_timeout) {}

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
  return absl::UnavailableError(absl::StrCat("redis ", endpoint_.host, ":", endpoint_.port, ": ",
                                             what, ": ", detail));
}

absl::Status RedisConnection::Connect() {
  if (ctx_ != nullptr) return absl::OkStatus();
  ctx_ = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port,
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
    absl::StatusOr<RedisValue> reply = Command(auth);
    if (!reply.ok()) {
      Disconnect();
      return absl::UnavailableError(absl::StrCat("redis AUTH failed: ", reply.status().message()));
    }
  }
  if (endpoint_.db != 0) {
    absl::StatusOr<RedisValue> reply = Command({"SELECT", std::to_string(endpoint_.db)});
    if (!reply.ok()) {
      Disconnect();
      return absl::UnavailableError(
          absl::StrCat("redis SELECT ", endpoint_.db, " failed: ", reply.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RedisValue> RedisConnection::ReadReply() {
  void* raw = nullptr;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return IoError("read");
  RedisReply reply(static_cast<redisReply*>(raw));
  return Convert(reply.get());
}

absl::StatusOr<RedisValue> RedisConnection::Command(absl::Span<const std::string> argv) {
  if (absl::Status s = Connect(); !s.ok()) return s;
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  void* raw = redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data());
  if (raw == nullptr) return IoError(argv.empty() ? "command" : argv[0]);
  RedisReply reply(static_cast<redisReply*>(raw));
  RedisValue value = Convert(reply.get());
  if (value.is_error()) return absl::InternalError(value.str);
  return value;
}

absl::StatusOr<std::vector<RedisValue>> RedisConnection::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  if (absl::Status s = Connect(); !s.ok()) return s;
  for (const auto& argv : commands) {
    std::vector<const char*> args;
    std::vector<size_t> lens;
    for (const std::string& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data()) !=
        REDIS_OK) {
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
  absl::StatusOr<RedisValue> reply = Command(argv);
  if (!reply.ok() && reply.status().code() == absl::StatusCode::kInternal &&
      absl::StartsWith(reply.status().message(), "NOSCRIPT")) {
    absl::StatusOr<RedisValue> loaded = Command({"SCRIPT", "LOAD", script.source});
    if (!loaded.ok()) return loaded.status();
    reply = Command(argv);
  }
  return reply;
}

absl::StatusOr<absl::optional<RedisValue>> RedisConnection::ReadPush(absl::Duration timeout) {
  if (ctx_ == nullptr) return absl::UnavailableError("redis: subscription connection lost");
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

RedisConnectionPool::RedisConnectionPool(RedisEndpoint endpoint, absl::Duration connect_timeout,
                                         absl::Duration command_timeout, size_t max_idle)
    : endpoint_(std::move(endpoint)),
      connect_timeout_(connect_timeout),
      command_timeout_(command_timeout),
      max_idle_(max_idle) {}

RedisConnectionPool::Lease::~Lease() {
  if (conn_ != nullptr && pool_ != nullptr) pool_->Release(std::move(conn_));
}

RedisConnectionPool::Lease RedisConnectionPool::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      std::unique_ptr<RedisConnection> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
  }
  return Lease(this, NewConnection(command_timeout_));
}

std::unique_ptr<RedisConnection> RedisConnectionPool::NewConnection(
    absl::Duration command_timeout) const {
  return std::make_unique<RedisConnection>(endpoint_, connect_timeout_, command_timeout);
}

void RedisConnectionPool::Release(std::unique_ptr<RedisConnection> conn) {
  if (!conn->connected()) return;
  absl::MutexLock lock(&mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(conn));
}

}  // namespace conveyor::orchestrator
