#include "orchestrator/redis/redis_connection.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <poll.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log.h"

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

constexpr absl::string_view kUrlForms =
    "want redis://[[user]:password@]host[:port][/db] or "
    "redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db]";
constexpr int kSentinelDefaultPort = 26379;

bool AllDigits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
}

absl::Status BadUrl(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("--redis-url: ", what));
}

// One "host[:port]" / "[v6][:port]" item. `may_echo`: the item came after an
// '@', so it cannot hold the password and may be shown.
absl::StatusOr<RedisAddress> ParseHostPort(absl::string_view item, int default_port,
                                           bool may_echo) {
  RedisAddress address;
  address.port = default_port;
  absl::string_view port_text;
  bool has_port = false;
  if (absl::StartsWith(item, "[")) {
    size_t close = item.find(']');
    if (close == absl::string_view::npos) {
      return BadUrl("an IPv6 address needs its closing ']'");
    }
    address.host = std::string(item.substr(1, close - 1));
    absl::string_view after = item.substr(close + 1);
    if (!after.empty()) {
      if (!absl::ConsumePrefix(&after, ":")) return BadUrl("want ':port' after ']'");
      port_text = after;
      has_port = true;
    }
  } else {
    size_t colon = item.find(':');
    if (colon != absl::string_view::npos && item.find(':', colon + 1) != absl::string_view::npos) {
      return BadUrl("an IPv6 address goes in brackets, e.g. [::1]:6379");
    }
    address.host = std::string(item.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port_text = item.substr(colon + 1);
      has_port = true;
    }
  }
  if (has_port) {
    if (!absl::SimpleAtoi(port_text, &address.port) || address.port <= 0 ||
        address.port > 65535) {
      if (may_echo || AllDigits(port_text)) {
        return BadUrl(absl::StrCat("port must be 1..65535, got \"", port_text, "\""));
      }
      // Without an '@', "redis://:s3cret" reads as host "" and port
      // "s3cret": the text may be a password, so it is not shown.
      return BadUrl("port must be a number 1..65535 (the text after ':' is not shown: "
                    "if it is a password, end it with '@' and add the host)");
    }
  }
  if (address.host.empty()) return BadUrl("no host (want host[:port] after '//' or '@')");
  return address;
}

absl::StatusOr<int> ParseDb(absl::string_view text) {
  int db = 0;
  if (!absl::SimpleAtoi(text, &db) || db < 0) {
    return BadUrl(absl::StrCat("database must be a number >= 0, got \"", text, "\""));
  }
  return db;
}

bool ValidMasterName(absl::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

std::string FormatRedisAddress(const RedisAddress& address) {
  if (absl::StrContains(address.host, ':')) return absl::StrCat("[", address.host, "]:", address.port);
  return absl::StrCat(address.host, ":", address.port);
}

std::string RedisEndpoint::Describe() const {
  if (!sentinel_managed()) return absl::StrCat(FormatRedisAddress({host, port}), "/", db);
  return absl::StrCat("sentinel:", master_name, "@",
                      absl::StrJoin(sentinels, ",",
                                    [](std::string* out, const RedisAddress& a) {
                                      out->append(FormatRedisAddress(a));
                                    }),
                      "/", db);
}

std::string RedactRedisUrl(absl::string_view url) {
  size_t scheme_end = url.find("://");
  absl::string_view scheme = scheme_end == absl::string_view::npos ? "" : url.substr(0, scheme_end + 3);
  absl::string_view rest = url.substr(scheme.size());
  size_t at = rest.rfind('@');
  if (at != absl::string_view::npos) return absl::StrCat(scheme, "***@", rest.substr(at + 1));
  // No '@': a password given without it would sit after a ':' where a port
  // belongs. Hide whatever there is not a number.
  size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  absl::string_view path = slash == absl::string_view::npos ? "" : rest.substr(slash);
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(authority, ',')) {
    size_t colon = item.rfind(':');
    if (colon == absl::string_view::npos || AllDigits(item.substr(colon + 1)) ||
        absl::EndsWith(item, "]") || item.substr(colon + 1).empty()) {
      items.emplace_back(item);
    } else {
      items.push_back(absl::StrCat(item.substr(0, colon), ":***"));
    }
  }
  return absl::StrCat(scheme, absl::StrJoin(items, ","), path);
}

absl::StatusOr<RedisEndpoint> ParseRedisUrl(absl::string_view url) {
  RedisEndpoint endpoint;
  absl::string_view rest = url;
  bool sentinel = false;
  if (absl::ConsumePrefix(&rest, "redis-sentinel://")) {
    sentinel = true;
  } else if (!absl::ConsumePrefix(&rest, "redis://")) {
    return BadUrl(absl::StrCat(kUrlForms, ", got \"", RedactRedisUrl(url), "\""));
  }
  // The last '@' ends the userinfo: a password may itself hold '@'.
  size_t at = rest.rfind('@');
  const bool had_userinfo = at != absl::string_view::npos;
  if (had_userinfo) {
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
  absl::string_view hosts = rest.substr(0, slash);
  std::vector<absl::string_view> path;
  if (slash != absl::string_view::npos) path = absl::StrSplit(rest.substr(slash + 1), '/');
  if (sentinel) {
    if (path.empty() || path[0].empty()) {
      return BadUrl("redis-sentinel:// needs the master's name after the sentinels, e.g. "
                    "redis-sentinel://h1:26379,h2:26379/mymaster");
    }
    if (!ValidMasterName(path[0])) {
      return BadUrl(absl::StrCat("master name may hold letters, digits, '.', '_' and '-', got \"",
                                 path[0], "\""));
    }
    if (path.size() > 2) return BadUrl("want /master[/db] after the sentinels");
    endpoint.master_name = std::string(path[0]);
    if (path.size() == 2 && !path[1].empty()) {
      absl::StatusOr<int> db = ParseDb(path[1]);
      if (!db.ok()) return db.status();
      endpoint.db = *db;
    }
    if (hosts.empty()) return BadUrl("redis-sentinel:// needs at least one sentinel host");
    for (absl::string_view item : absl::StrSplit(hosts, ',')) {
      absl::StatusOr<RedisAddress> address =
          ParseHostPort(item, kSentinelDefaultPort, had_userinfo);
      if (!address.ok()) return address.status();
      endpoint.sentinels.push_back(*std::move(address));
    }
    endpoint.host.clear();
    endpoint.port = 0;
    return endpoint;
  }
  if (path.size() > 1) return BadUrl("want at most /db after host:port");
  if (!path.empty() && !path[0].empty()) {
    absl::StatusOr<int> db = ParseDb(path[0]);
    if (!db.ok()) return db.status();
    endpoint.db = *db;
  }
  if (absl::StrContains(hosts, ',')) {
    return BadUrl("several hosts need the redis-sentinel:// form");
  }
  absl::StatusOr<RedisAddress> address = ParseHostPort(hosts, 6379, had_userinfo);
  if (!address.ok()) return address.status();
  endpoint.host = address->host;
  endpoint.port = address->port;
  return endpoint;
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
  return absl::InternalError(text);
}

bool RedisErrorMeansNotPrimary(absl::string_view text) {
  const absl::string_view code = text.substr(0, text.find(' '));
  return code == "READONLY" || code == "MASTERDOWN";
}

// ---------------------------------------------------------------------------
// Sentinel: which address is the primary.

class RedisPrimaryResolver {
 public:
  // A sentinel is asked with a short timeout: the asking thread's command
  // waits for it, and the next sentinel may answer at once.
  RedisPrimaryResolver(RedisEndpoint endpoint, absl::Duration connect_timeout)
      : endpoint_(std::move(endpoint)),
        ask_timeout_(std::min(connect_timeout, absl::Milliseconds(250))) {}

  // The primary the sentinels named, asked again when older than
  // kPrimaryRecheck or after Invalidate(). If no sentinel answers, the last
  // known address (the primary may well be fine while sentinels restart).
  absl::StatusOr<RedisAddress> Current() {
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = absl::Now();
      const bool fresh = !stale_ && now - asked_at_ < kPrimaryRecheck;
      // Many connections failing at once ask once, not each.
      const bool too_soon = now - asked_at_ < kMinAskInterval;
      if (fresh || too_soon) return LastLocked();
    }
    if (!ask_mu_.TryLock()) {
      // Another thread is asking: a known address will do meanwhile.
      {
        absl::MutexLock lock(&mu_);
        if (known_) return address_;
      }
      absl::MutexLock wait(&ask_mu_);
      absl::MutexLock lock(&mu_);
      return LastLocked();
    }
    absl::StatusOr<RedisAddress> asked = Ask();
    absl::MutexLock lock(&mu_);
    asked_at_ = absl::Now();
    if (asked.ok()) {
      if (!known_ || address_ != *asked) {
        LogLine(known_ ? LogLevel::kWarning : LogLevel::kInfo)
            .Add("msg", known_ ? "redis primary moved" : "redis primary found")
            .Add("master", endpoint_.master_name)
            .Add("from", known_ ? FormatRedisAddress(address_) : std::string("-"))
            .Add("to", FormatRedisAddress(*asked));
      }
      address_ = *asked;
      known_ = true;
      stale_ = false;
    } else {
      last_error_ = asked.status();
    }
    ask_mu_.Unlock();
    return LastLocked();
  }

  // After connection loss or a READONLY reply: ask again on the next call.
  void Invalidate() {
    absl::MutexLock lock(&mu_);
    stale_ = true;
  }

 private:
  static constexpr absl::Duration kMinAskInterval = absl::Milliseconds(50);

  absl::StatusOr<RedisAddress> LastLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (known_) return address_;
    return last_error_;
  }

  // Asks each sentinel in turn, starting with the one that answered last.
  absl::StatusOr<RedisAddress> Ask() {
    size_t first;
    {
      absl::MutexLock lock(&mu_);
      first = first_sentinel_;
    }
    std::vector<std::string> failures;
    const size_t n = endpoint_.sentinels.size();
    for (size_t i = 0; i < n; ++i) {
      const size_t index = (first + i) % n;
      const RedisAddress& sentinel = endpoint_.sentinels[index];
      absl::StatusOr<RedisAddress> named = AskOne(sentinel);
      if (named.ok()) {
        absl::MutexLock lock(&mu_);
        first_sentinel_ = index;
        return named;
      }
      failures.push_back(absl::StrCat(FormatRedisAddress(sentinel), ": ", named.status().message()));
    }
    return absl::UnavailableError(absl::StrCat("redis-sentinel: no sentinel named the primary of \"",
                                               endpoint_.master_name, "\" (",
                                               absl::StrJoin(failures, "; "), ")"));
  }

  absl::StatusOr<RedisAddress> AskOne(const RedisAddress& sentinel) {
    RedisContextPtr ctx(redisConnectWithTimeout(sentinel.host.c_str(), sentinel.port,
                                                absl::ToTimeval(ask_timeout_)));
    if (ctx == nullptr) return absl::UnavailableError("cannot allocate a context");
    if (ctx->err != 0) return absl::UnavailableError(ctx->errstr);
    redisSetTimeout(ctx.get(), absl::ToTimeval(ask_timeout_));
    const char* argv[] = {"SENTINEL", "get-master-addr-by-name", endpoint_.master_name.c_str()};
    const size_t lens[] = {8, 23, endpoint_.master_name.size()};
    RedisReply reply(static_cast<redisReply*>(redisCommandArgv(ctx.get(), 3, argv, lens)));
    if (reply == nullptr) return absl::UnavailableError(ctx->errstr);
    RedisValue v = Convert(reply.get());
    if (v.is_error()) return absl::UnavailableError(v.str);
    if (v.is_nil()) return absl::UnavailableError("does not monitor this master");
    RedisAddress address;
    if (!v.is_array() || v.elements.size() != 2 ||
        !absl::SimpleAtoi(v.elements[1].str, &address.port)) {
      return absl::UnavailableError("unexpected reply");
    }
    address.host = v.elements[0].str;
    return address;
  }

  const RedisEndpoint endpoint_;
  const absl::Duration ask_timeout_;
  absl::Mutex ask_mu_;  // held by the one thread asking the sentinels
  absl::Mutex mu_;
  bool known_ ABSL_GUARDED_BY(mu_) = false;
  RedisAddress address_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_) =
      absl::UnavailableError("redis-sentinel: not asked yet");
  bool stale_ ABSL_GUARDED_BY(mu_) = true;
  absl::Time asked_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  size_t first_sentinel_ ABSL_GUARDED_BY(mu_) = 0;
};

// ---------------------------------------------------------------------------

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
      // Redis's text ("WRONGPASS invalid username-password pair") never
      // repeats the password.
      return absl::UnavailableError(absl::StrCat("redis AUTH failed: ", reply->str));
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

RedisConnectionPool::RedisConnectionPool(RedisEndpoint endpoint, absl::Duration connect_timeout,
                                         absl::Duration command_timeout, size_t max_idle)
    : endpoint_(std::move(endpoint)),
      connect_timeout_(connect_timeout),
      command_timeout_(command_timeout),
      max_idle_(max_idle) {
  if (endpoint_.sentinel_managed()) {
    resolver_ = std::make_shared<RedisPrimaryResolver>(endpoint_, connect_timeout_);
  }
}

RedisConnectionPool::~RedisConnectionPool() = default;

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
  return std::make_unique<RedisConnection>(endpoint_, connect_timeout_, command_timeout,
                                           resolver_);
}

void RedisConnectionPool::Release(std::unique_ptr<RedisConnection> conn) {
  if (!conn->connected()) return;
  absl::MutexLock lock(&mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(conn));
}

}  // namespace conveyor::orchestrator
