#include "orchestrator/redis/redis_connection.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

// --redis-url parsing and the endpoint's descriptions: no connection here.

namespace conveyor::orchestrator {
namespace {

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

}  // namespace conveyor::orchestrator
