#include "tests/testing/redis_node.h"

#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace conveyor::testing {

using orchestrator::ParseRedisUrl;
using orchestrator::RedisConnection;
using orchestrator::RedisValue;

absl::StatusOr<RedisValue> RedisCall(int port, std::initializer_list<std::string> argv) {
  RedisConnection conn(*ParseRedisUrl(absl::StrCat("redis://127.0.0.1:", port)),
                       absl::Milliseconds(300), absl::Seconds(2));
  return conn.Command(argv);
}

std::string InfoField(const std::string& info, const std::string& field) {
  for (absl::string_view line : absl::StrSplit(info, "\r\n")) {
    if (absl::ConsumePrefix(&line, field + ":")) return std::string(line);
  }
  return "";
}

std::string ReplyField(const RedisValue& reply, const std::string& field) {
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    if (reply.elements[i].str == field) return reply.elements[i + 1].str;
  }
  return "";
}

absl::StatusOr<std::unique_ptr<RedisNode>> RedisNode::Start(
    const std::string& binary, const std::string& dir, const std::string& name,
    const std::vector<std::string>& config, std::mt19937& rng, const std::string& userinfo) {
  auto node = std::unique_ptr<RedisNode>(new RedisNode());
  node->binary_ = binary;
  node->userinfo_ = userinfo;
  node->conf_ = absl::StrCat(dir, "/", name, ".conf");
  node->log_ = absl::StrCat(dir, "/", name, ".log");
  for (int attempt = 0; attempt < 20; ++attempt) {
    node->port_ = 20000 + static_cast<int>(rng() % 12000);
    std::ofstream conf(node->conf_, std::ios::trunc);
    conf << "port " << node->port_ << "\nbind 127.0.0.1\ndaemonize no\n";
    for (const std::string& line : config) conf << line << "\n";
    conf.close();
    if (node->Launch(absl::Seconds(10))) return node;
  }
  return absl::UnavailableError(absl::StrCat(binary, " ", name,
                                             ": no port bound after 20 tries; log:\n",
                                             ReadFile(node->log_)));
}

bool RedisNode::Launch(absl::Duration timeout) {
  process_ = std::make_unique<ScopedProcess>(std::vector<std::string>{binary_, conf_}, log_);
  const absl::Time until = absl::Now() + timeout;
  while (absl::Now() < until) {
    if (!process_->running()) return false;  // could not bind (or bad config)
    // INFO is served while loading, so a node loading its AOF is up.
    absl::StatusOr<RedisValue> info =
        userinfo_.empty()
            ? RedisCall(port_, {"INFO", "server"})
            : RedisConnection(*ParseRedisUrl(absl::StrCat("redis://", userinfo_, "@127.0.0.1:",
                                                          port_)),
                              absl::Milliseconds(300), absl::Seconds(2))
                  .Command({"INFO", "server"});
    if (info.ok() && InfoField(info->str, "process_id") == std::to_string(process_->pid())) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  process_->Kill();
  return false;
}

}  // namespace conveyor::testing
