#include "orchestrator/redis_replica_registry.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/stage_registry.h"
#include "common/status_details.h"
#include "orchestrator/chain_filter.h"
#include "orchestrator/chain_validator.h"
#include "orchestrator/redis/redis_keys.h"
#include "orchestrator/redis/scripts.h"
#include "orchestrator/redis_transition_script.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;
using conveyor::v1::State;

RedisReplicaRegistry::RedisReplicaRegistry(RedisConnectionPool& pool) : pool_(pool) {}

absl::Status RedisReplicaRegistry::ReportReplica(const ReplicaInfo& replica, absl::Duration ttl) {
  std::vector<std::string> hset = {"HSET", ReplicaKey(replica.name), "address", replica.address};
  for (const auto& [stage, n] : replica.in_flight) {
    hset.push_back(absl::StrCat("in_flight.", stage));
    hset.push_back(std::to_string(n));
  }
  for (const auto& [stage, n] : replica.waiting) {
    hset.push_back(absl::StrCat("waiting.", stage));
    hset.push_back(std::to_string(n));
  }
  auto conn = pool_.Acquire();
  return conn
      ->Pipeline({{"ZADD", std::string(kReplicasKey), std::to_string(ToMs(replica.heartbeat)),
                   replica.name},
                  hset,
                  {"PEXPIRE", ReplicaKey(replica.name),
                   std::to_string(absl::ToInt64Milliseconds(ttl))},
                  // Replicas silent for an hour are gone for good: forget them
                  // here, so Status() only reads.
                  {"ZREMRANGEBYSCORE", std::string(kReplicasKey), "-inf",
                   std::to_string(ToMs(replica.heartbeat - absl::Hours(1)))}})
      .status();
}

absl::StatusOr<StoreStatus> RedisReplicaRegistry::Status(absl::Time live_after) {
  auto conn = pool_.Acquire();
  std::vector<std::vector<std::string>> commands = {
      {"HGETALL", std::string(kStatsKey)},
      {"ZRANGEBYSCORE", std::string(kReplicasKey), std::to_string(ToMs(live_after)), "+inf",
       "WITHSCORES"}};
  for (State s : kAllStates) commands.push_back({"ZCARD", StateIndexKey(s)});
  const size_t blob_bytes_at = commands.size();
  commands.push_back({"GET", std::string(kBlobBytesKey)});
  commands.push_back({"INFO", "memory"});
  absl::StatusOr<std::vector<RedisValue>> replies = conn->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  StoreStatus out;
  if ((*replies)[blob_bytes_at].type == RedisValue::Type::kString) {
    absl::SimpleAtoi((*replies)[blob_bytes_at].str, &out.blob_bytes);
  }
  // INFO may be renamed or disabled on managed Redis: then the fields stay -1.
  const RedisValue& info = (*replies)[blob_bytes_at + 1];
  if (info.type == RedisValue::Type::kString) {
    for (absl::string_view line : absl::StrSplit(info.str, '\n')) {
      line = absl::StripTrailingAsciiWhitespace(line);
      if (absl::ConsumePrefix(&line, "used_memory:")) {
        absl::SimpleAtoi(line, &out.redis_used_memory);
      } else if (absl::ConsumePrefix(&line, "maxmemory:")) {
        absl::SimpleAtoi(line, &out.redis_max_memory);
      }
    }
  }
  for (const StageInfo& stage : Stages()) out.stages[std::string(stage.name)];
  const RedisValue& stats = (*replies)[0];
  for (size_t i = 0; stats.is_array() && i + 1 < stats.elements.size(); i += 2) {
    std::pair<std::string, std::string> parts =
        absl::StrSplit(stats.elements[i].str, absl::MaxSplits('.', 1));
    int64_t n = 0;
    absl::SimpleAtoi(stats.elements[i + 1].str, &n);
    StageCounters& c = out.stages[parts.first];
    if (parts.second == "queued") c.queued = std::max<int64_t>(0, n);
    if (parts.second == "succeeded") c.succeeded = n;
    if (parts.second == "failed") c.failed = n;
    if (parts.second == "retried") c.retried = n;
  }
  for (size_t i = 0; i < std::size(kAllStates); ++i) {
    out.chains_by_state[conveyor::v1::State_Name(kAllStates[i])] = (*replies)[2 + i].integer;
  }
  const RedisValue& live = (*replies)[1];
  std::vector<std::vector<std::string>> gets;
  for (size_t i = 0; live.is_array() && i + 1 < live.elements.size(); i += 2) {
    ReplicaInfo r;
    r.name = live.elements[i].str;
    double ms = 0;
    absl::SimpleAtod(live.elements[i + 1].str, &ms);
    r.heartbeat = absl::FromUnixMillis(static_cast<int64_t>(ms));
    out.replicas.push_back(std::move(r));
    gets.push_back({"HGETALL", ReplicaKey(out.replicas.back().name)});
  }
  if (!gets.empty()) {
    absl::StatusOr<std::vector<RedisValue>> hashes = conn->Pipeline(gets);
    if (!hashes.ok()) return hashes.status();
    for (size_t r = 0; r < hashes->size(); ++r) {
      const RedisValue& h = (*hashes)[r];
      for (size_t i = 0; h.is_array() && i + 1 < h.elements.size(); i += 2) {
        const std::string& f = h.elements[i].str;
        if (f == "address") {
          out.replicas[r].address = h.elements[i + 1].str;
        } else if (absl::StartsWith(f, "in_flight.")) {
          int64_t n = 0;
          absl::SimpleAtoi(h.elements[i + 1].str, &n);
          std::string stage = f.substr(10);
          out.replicas[r].in_flight[stage] = n;
          out.stages[stage].in_flight += n;
        } else if (absl::StartsWith(f, "waiting.")) {
          int64_t n = 0;
          absl::SimpleAtoi(h.elements[i + 1].str, &n);
          out.stages[f.substr(8)].waiting += n;
        }
      }
    }
  }
  return out;
}

absl::StatusOr<absl::Duration> RedisReplicaRegistry::Ping() {
  auto conn = pool_.Acquire();
  const absl::Time start = absl::Now();
  absl::StatusOr<RedisValue> reply = conn->Command({"PING"});
  if (!reply.ok()) return reply.status();
  return absl::Now() - start;
}

}  // namespace conveyor::orchestrator
