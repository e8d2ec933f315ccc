#include "orchestrator/redis_ready_queue.h"

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

RedisReadyQueue::RedisReadyQueue(RedisConnectionPool& pool)
    : pool_(pool), promote_script_(scripts::kPromoteLua) {}

absl::Status RedisReadyQueue::EnsureGroups() {
  auto conn = pool_.Acquire();
  for (conveyor::v1::Priority p : kPriorities) {
    absl::StatusOr<RedisValue> r =
        conn->Command({"XGROUP", "CREATE", ReadyStreamKey(p), std::string(kDispatchGroup), "0",
                       "MKSTREAM"});
    if (!r.ok() && !absl::StartsWith(r.status().message(), "BUSYGROUP")) return r.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<QueueEntry>> RedisReadyQueue::ParseEntries(const RedisValue& entries,
                                                                      const std::string& stream,
                                                                      bool reclaimed) {
  std::vector<QueueEntry> out;
  if (!entries.is_array()) return out;
  conveyor::v1::Priority priority = conveyor::v1::PRIORITY_NORMAL;
  for (conveyor::v1::Priority p : kPriorities) {
    if (ReadyStreamKey(p) == stream) priority = p;
  }
  for (const RedisValue& entry : entries.elements) {
    if (!entry.is_array() || entry.elements.size() != 2) continue;
    QueueEntry e;
    e.stream = stream;
    e.id = entry.elements[0].str;
    e.priority = priority;
    e.reclaimed = reclaimed;
    e.counted = reclaimed;
    const RedisValue& fields = entry.elements[1];
    if (!fields.is_array()) {
      // Deleted while pending: nothing to run, just acknowledge it.
      e.chain_id.clear();
      out.push_back(std::move(e));
      continue;
    }
    for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
      const std::string& f = fields.elements[i].str;
      const std::string& v = fields.elements[i + 1].str;
      if (f == "c") {
        e.chain_id = v;
      } else if (f == "s") {
        absl::SimpleAtoi(v, &e.step);
      } else if (f == "t") {
        absl::SimpleAtoi(v, &e.token);
      } else if (f == "b") {
        absl::SimpleAtoi(v, &e.input_blob);
      } else if (f == "k") {
        int kind = 0;
        absl::SimpleAtoi(v, &kind);
        e.kind = static_cast<conveyor::v1::StageKind>(kind);
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<std::vector<QueueEntry>> RedisReadyQueue::ClaimReady(const std::string& consumer,
                                                                    int count,
                                                                    absl::Duration block) {
  auto conn = pool_.Acquire();
  std::vector<std::string> argv = {"XREADGROUP", "GROUP", std::string(kDispatchGroup), consumer,
                                   "COUNT", std::to_string(count), "BLOCK",
                                   std::to_string(std::max<int64_t>(1, absl::ToInt64Milliseconds(block))),
                                   "STREAMS"};
  for (conveyor::v1::Priority p : kPriorities) argv.push_back(ReadyStreamKey(p));
  for (int i = 0; i < 3; ++i) argv.push_back(">");
  absl::StatusOr<RedisValue> reply = conn->Command(argv);
  if (!reply.ok() && absl::StartsWith(reply.status().message(), "NOGROUP")) {
    // Redis lost its data (restart without persistence): recreate and go on.
    if (absl::Status s = EnsureGroups(); !s.ok()) return s;
    reply = conn->Command(argv);
  }
  if (!reply.ok()) return reply.status();
  std::vector<QueueEntry> out;
  if (!reply->is_array()) return out;
  // Keep high, normal, low order whatever order Redis answers in.
  std::map<int, std::vector<QueueEntry>> by_priority;
  for (const RedisValue& stream : reply->elements) {
    if (!stream.is_array() || stream.elements.size() != 2) continue;
    absl::StatusOr<std::vector<QueueEntry>> entries =
        ParseEntries(stream.elements[1], stream.elements[0].str, false);
    if (!entries.ok()) return entries.status();
    for (QueueEntry& e : *entries) by_priority[-static_cast<int>(e.priority)].push_back(e);
  }
  for (auto& [unused, entries] : by_priority) {
    for (QueueEntry& e : entries) out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<std::vector<QueueEntry>> RedisReadyQueue::Reclaim(const std::string& consumer,
                                                                 absl::Duration min_idle,
                                                                 int count) {
  auto conn = pool_.Acquire();
  std::vector<std::vector<std::string>> commands;
  for (conveyor::v1::Priority p : kPriorities) {
    commands.push_back({"XAUTOCLAIM", ReadyStreamKey(p), std::string(kDispatchGroup), consumer,
                        std::to_string(absl::ToInt64Milliseconds(min_idle)), "0-0", "COUNT",
                        std::to_string(count)});
  }
  absl::StatusOr<std::vector<RedisValue>> replies = conn->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  std::vector<QueueEntry> out;
  for (size_t i = 0; i < replies->size(); ++i) {
    const RedisValue& r = (*replies)[i];
    if (r.is_error()) {
      if (absl::StartsWith(r.str, "NOGROUP")) continue;
      return absl::InternalError(r.str);
    }
    if (!r.is_array() || r.elements.size() < 2) continue;
    absl::StatusOr<std::vector<QueueEntry>> entries =
        ParseEntries(r.elements[1], ReadyStreamKey(kPriorities[i]), true);
    if (!entries.ok()) return entries.status();
    for (QueueEntry& e : *entries) out.push_back(std::move(e));
    // Ids whose entries were deleted while pending (Redis 7 third element):
    // acknowledge them so they leave the PEL.
    if (r.elements.size() >= 3 && r.elements[2].is_array()) {
      for (const RedisValue& gone : r.elements[2].elements) {
        QueueEntry e;
        e.stream = ReadyStreamKey(kPriorities[i]);
        e.id = gone.str;
        e.reclaimed = true;
        out.push_back(std::move(e));
      }
    }
  }
  return out;
}

absl::Status RedisReadyQueue::Heartbeat(const std::string& consumer,
                                        const std::vector<QueueEntry>& entries) {
  if (entries.empty()) return absl::OkStatus();
  std::map<std::string, std::vector<std::string>> by_stream;
  for (const QueueEntry& e : entries) by_stream[e.stream].push_back(e.id);
  std::vector<std::vector<std::string>> commands;
  for (auto& [stream, ids] : by_stream) {
    std::vector<std::string> argv = {"XCLAIM", stream, std::string(kDispatchGroup), consumer, "0"};
    argv.insert(argv.end(), ids.begin(), ids.end());
    argv.push_back("JUSTID");
    commands.push_back(std::move(argv));
  }
  auto conn = pool_.Acquire();
  absl::StatusOr<std::vector<RedisValue>> replies = conn->Pipeline(commands);
  return replies.status();
}

absl::Status RedisReadyQueue::Ack(const QueueEntry& entry,
                                  const std::vector<std::pair<std::string, int>>& counters) {
  std::vector<std::vector<std::string>> commands = {
      {"XACK", entry.stream, std::string(kDispatchGroup), entry.id},
      {"XDEL", entry.stream, entry.id}};
  for (const auto& [field, n] : counters) {
    commands.push_back({"HINCRBY", std::string(kStatsKey), field, std::to_string(n)});
  }
  auto conn = pool_.Acquire();
  return conn->Pipeline(commands).status();
}

absl::StatusOr<absl::optional<absl::Time>> RedisReadyQueue::PromoteDue(absl::Time now) {
  std::vector<std::string> keys = {std::string(kDelayedKey)};
  for (conveyor::v1::Priority p : kPriorities) keys.push_back(ReadyStreamKey(p));
  std::vector<std::string> args = {std::to_string(ToMs(now)), "500"};
  auto conn = pool_.Acquire();
  absl::StatusOr<RedisValue> reply = conn->Eval(promote_script_, keys, args);
  if (!reply.ok()) return reply.status();
  absl::optional<absl::Time> next;
  if (reply->is_array() && reply->elements.size() == 2) {
    int64_t moved = reply->elements[0].integer;
    double due_ms = 0;
    if (moved >= 500) return absl::optional<absl::Time>(now);  // more are due: go again
    if (absl::SimpleAtod(reply->elements[1].str, &due_ms)) {
      next = absl::FromUnixMillis(static_cast<int64_t>(due_ms));
    }
  }
  return next;
}

}  // namespace conveyor::orchestrator
