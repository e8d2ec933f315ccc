#include "orchestrator/redis_chain_store.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/match.h"
#include "orchestrator/chain_filter.h"
#include "orchestrator/chain_validator.h"
#include "orchestrator/redis/redis_keys.h"
#include "orchestrator/redis/scripts.h"
#include "common/stage_registry.h"
#include "common/status_details.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;
using conveyor::v1::State;

namespace {

constexpr State kAllStates[] = {conveyor::v1::PENDING, conveyor::v1::RUNNING,
                                conveyor::v1::RETRYING, conveyor::v1::SUCCEEDED,
                                conveyor::v1::FAILED, conveyor::v1::CANCELLED};
constexpr conveyor::v1::Priority kPriorities[] = {
    conveyor::v1::PRIORITY_HIGH, conveyor::v1::PRIORITY_NORMAL, conveyor::v1::PRIORITY_LOW};

int64_t ToMs(absl::Time t) { return absl::ToUnixMillis(t); }

// Builds one apply.lua call: KEYS deduplicated, ops referencing them by index.
class ScriptCall {
 public:
  explicit ScriptCall(const std::string& meta_key) { Key(meta_key); }
  int Key(const std::string& key) {
    auto [it, inserted] = index_.emplace(key, static_cast<int>(keys_.size()) + 1);
    if (inserted) keys_.push_back(key);
    return it->second;
  }
  void Op(absl::string_view cmd, const std::string& key, std::vector<std::string> args) {
    OpIndex(cmd, key.empty() ? 0 : Key(key), std::move(args));
  }
  void OpIndex(absl::string_view cmd, int key_index, std::vector<std::string> args) {
    ops_.emplace_back(cmd);
    ops_.push_back(std::to_string(key_index));
    ops_.push_back(std::to_string(args.size()));
    for (std::string& a : args) ops_.push_back(std::move(a));
    ++count_;
  }
  // Blob writes and deletes go through BLOBSET/BLOBDEL so that
  // cv:{q}:blob_bytes stays exact.
  void BlobSet(const std::string& key, const std::string& bytes) {
    const int counter = Key(std::string(kBlobBytesKey));
    Op("BLOBSET", key, {bytes, std::to_string(counter)});
  }
  void BlobDel(const std::string& key) {
    const int counter = Key(std::string(kBlobBytesKey));
    Op("BLOBDEL", key, {std::to_string(counter)});
  }
  std::vector<std::string> Args(std::string mode, std::string a2, std::string a3) const {
    std::vector<std::string> args = {std::move(mode), std::move(a2), std::move(a3),
                                     std::to_string(count_)};
    args.insert(args.end(), ops_.begin(), ops_.end());
    return args;
  }
  const std::vector<std::string>& keys() const { return keys_; }

 private:
  std::vector<std::string> keys_;
  std::map<std::string, int> index_;
  std::vector<std::string> ops_;
  int count_ = 0;
};

int64_t CreateMs(const Chain& chain) {
  return chain.create_time().seconds() * 1000 + chain.create_time().nanos() / 1000000;
}

absl::Status ScriptOutcome(const RedisValue& reply, const std::string& what) {
  if (!reply.is_array() || reply.elements.empty()) {
    return absl::InternalError(absl::StrCat(what, ": unexpected reply from the chain store"));
  }
  const std::string& tag = reply.elements[0].str;
  const std::string arg = reply.elements.size() > 1 ? reply.elements[1].str : "?";
  if (tag == "OK") return absl::OkStatus();
  if (tag == "MISSING") return absl::NotFoundError(absl::StrCat(what, ": chain not found"));
  if (tag == "STALE") {
    return absl::AbortedError(absl::StrCat(what, ": stale version (stored ", arg, ")"));
  }
  if (tag == "EXISTS") return ChainExistsError(what);
  if (tag == "GONE") return BlobGoneError(what);
  if (tag == "FULL") return BlobStoreFullError(arg);
  return absl::InternalError(absl::StrCat(what, ": unexpected reply from the chain store"));
}

// Adds the effects of `t` to `call`.
void AddTransitionOps(ScriptCall& call, const Transition& t, const ApplyExtras& extras,
                      const RedisChainStoreOptions& options, bool is_new) {
  const absl::Duration retention = options.retention;
  const Chain& c = t.chain;
  const std::string id = ChainIdFromName(c.name());
  const std::string meta = ChainMetaKey(id);
  const int64_t create_ms = CreateMs(c);
  const std::string create_score = std::to_string(create_ms);
  const int64_t ttl_s = std::max<int64_t>(1, absl::ToInt64Seconds(retention));

  std::vector<std::string> fields = {"pb",      c.SerializeAsString(), "version",
                                     std::to_string(c.version()), "state",
                                     std::to_string(static_cast<int>(c.state()))};
  if (is_new) {
    fields.push_back("create_ms");
    fields.push_back(create_score);
  }
  if (t.effects.enqueue_step >= 0) {
    fields.push_back("qtoken");
    fields.push_back(std::to_string(c.version()));
  }
  if (IsTerminal(c.state())) {
    fields.push_back("end_ms");
    fields.push_back(std::to_string(ToMs(FromProtoTime(c.end_time()))));
  }
  call.Op("HSET", meta, std::move(fields));

  if (t.previous_state != c.state()) {
    if (t.previous_state != conveyor::v1::STATE_UNSPECIFIED) {
      call.Op("ZREM", StateIndexKey(t.previous_state), {id});
    }
    call.Op("ZADD", StateIndexKey(c.state()), {create_score, id});
  }
  for (const conveyor::v1::ChainEvent& e : t.effects.events) {
    call.Op("XADD", ChainEventsKey(id), {"*", "e", e.SerializeAsString()});
  }
  if (t.effects.output_blob >= 0 && extras.output_blob != nullptr) {
    call.BlobSet(ChainBlobKey(id, t.effects.output_blob), *extras.output_blob);
  }
  if (t.effects.enqueue_step >= 0) {
    const int step = t.effects.enqueue_step;
    const int kind = static_cast<int>(StepKind(c.spec().steps(step)));
    const std::string token = std::to_string(c.version());
    conveyor::v1::Priority priority = c.spec().priority();
    if (priority == conveyor::v1::PRIORITY_UNSPECIFIED) priority = conveyor::v1::PRIORITY_NORMAL;
    const int blob = InputBlobIndex(c.spec(), step);
    if (t.effects.retry_at.has_value()) {
      call.Op("ZADD", std::string(kDelayedKey),
              {std::to_string(ToMs(*t.effects.retry_at)),
               absl::StrCat(id, "|", step, "|", token, "|", static_cast<int>(priority), "|", kind,
                            "|", blob)});
    } else {
      call.Op("XADD", ReadyStreamKey(priority),
              {"*", "c", id, "s", std::to_string(step), "t", token, "k", std::to_string(kind), "b",
               std::to_string(blob)});
    }
  }
  if (extras.ack != nullptr) {
    call.Op("XACK", extras.ack->stream, {std::string(kDispatchGroup), extras.ack->id});
    call.Op("XDEL", extras.ack->stream, {extras.ack->id});
  }
  for (int blob : extras.required_blobs) call.Op("REQUIRE", ChainBlobKey(id, blob), {});
  const std::vector<std::string> chain_keys = {meta, ChainEventsKey(id)};
  std::vector<std::string> blob_keys;
  for (int blob : BlobIndexes(c)) {
    if (t.effects.delete_blobs) {
      call.BlobDel(ChainBlobKey(id, blob));
    } else {
      blob_keys.push_back(ChainBlobKey(id, blob));
    }
  }
  if (t.effects.expire) {
    for (const std::string& key : chain_keys) call.Op("EXPIRE", key, {std::to_string(ttl_s)});
    if (!blob_keys.empty()) {
      // A FAILED or CANCELLED chain: its images go after the failed-blob
      // retention (FreeExpiredBlobs), its record after the full retention.
      // The TTL only backstops a sweep that never ran; the sweep comes first
      // and keeps cv:{q}:blob_bytes exact.
      const absl::Duration keep = std::min(options.failed_blob_retention, retention);
      const int64_t free_ms = ToMs(FromProtoTime(c.end_time()) + keep);
      call.Op("ZADD", std::string(kBlobExpiryKey), {std::to_string(free_ms), id});
      const int64_t backstop_s = ttl_s + absl::ToInt64Seconds(keep) + 3600;
      for (const std::string& key : blob_keys) {
        call.Op("EXPIRE", key, {std::to_string(backstop_s)});
      }
    }
  } else if (t.effects.persist) {
    for (const std::string& key : chain_keys) call.Op("PERSIST", key, {});
    for (const std::string& key : blob_keys) call.Op("PERSIST", key, {});
    call.Op("ZREM", std::string(kBlobExpiryKey), {id});
  }
  std::map<std::string, int> counters;
  for (const auto& [field, n] : t.effects.counters) counters[field] += n;
  for (const auto& [field, n] : extras.counters) counters[field] += n;
  for (const auto& [field, n] : counters) {
    if (n != 0) call.Op("HINCRBY", std::string(kStatsKey), {field, std::to_string(n)});
  }
  if (t.effects.publish_cancel) {
    call.OpIndex("PUBLISH", 0, {std::string(kCancelChannel), id});
  }
}

absl::StatusOr<StoredChain> ParseStored(const RedisValue& pb, const RedisValue& token,
                                        const std::string& id) {
  if (pb.is_nil()) return absl::NotFoundError(absl::StrCat("chains/", id, " not found"));
  StoredChain stored;
  if (!stored.chain.ParseFromString(pb.str)) {
    return absl::DataLossError(absl::StrCat("chains/", id, ": stored chain does not parse"));
  }
  if (!token.is_nil()) absl::SimpleAtoi(token.str, &stored.queue_token);
  return stored;
}

std::string EncodePageToken(int64_t score, const std::string& id) {
  return absl::WebSafeBase64Escape(absl::StrCat(score, ":", id));
}

bool DecodePageToken(const std::string& token, int64_t& score, std::string& id) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return false;
  std::pair<std::string, std::string> parts = absl::StrSplit(raw, absl::MaxSplits(':', 1));
  if (parts.second.empty()) return false;
  id = parts.second;
  return absl::SimpleAtoi(parts.first, &score);
}

}  // namespace

RedisChainStore::RedisChainStore(RedisConnectionPool& pool, RedisChainStoreOptions options)
    : pool_(pool),
      options_(options),
      apply_script_(scripts::kApplyLua),
      promote_script_(scripts::kPromoteLua) {}

absl::Status RedisChainStore::EnsureGroups() {
  auto conn = pool_.Acquire();
  for (conveyor::v1::Priority p : kPriorities) {
    absl::StatusOr<RedisValue> r =
        conn->Command({"XGROUP", "CREATE", ReadyStreamKey(p), std::string(kDispatchGroup), "0",
                       "MKSTREAM"});
    if (!r.ok() && !absl::StartsWith(r.status().message(), "BUSYGROUP")) return r.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<SubmitOutcome> RedisChainStore::Submit(const Transition& t,
                                                      const std::string& spec_hash,
                                                      const std::string* source_bytes) {
  const Chain& c = t.chain;
  const std::string id = ChainIdFromName(c.name());
  ScriptCall call(ChainMetaKey(id));
  std::string idem_value;
  if (!c.idempotency_key().empty()) {
    call.Key(IdempotencyKey(c.idempotency_key()));
    idem_value = absl::StrCat(id, "|", spec_hash);
  }
  if (options_.max_blob_bytes > 0) {
    // Checked before any write (apply.lua pass 1). A chain that starts with a
    // download stores nothing yet, but is still refused while the store is
    // at the cap: its download would add to it.
    call.Op("BLOBCAP", std::string(kBlobBytesKey),
            {std::to_string(options_.max_blob_bytes),
             std::to_string(source_bytes != nullptr ? source_bytes->size() : 0)});
  }
  if (source_bytes != nullptr) call.BlobSet(ChainBlobKey(id, 0), *source_bytes);
  const std::string score = std::to_string(CreateMs(c));
  call.Op("ZADD", std::string(kAllIndexKey), {score, id});
  for (const auto& [k, v] : c.spec().labels()) call.Op("ZADD", LabelIndexKey(k, v), {score, id});
  AddTransitionOps(call, t, ApplyExtras{}, options_, /*is_new=*/true);

  absl::StatusOr<RedisValue> reply;
  {
    auto conn = pool_.Acquire();
    reply = conn->Eval(
        apply_script_, call.keys(),
        call.Args("create", idem_value,
                  std::to_string(std::max<int64_t>(1, absl::ToInt64Seconds(options_.retention)))));
  }
  if (!reply.ok()) return reply.status();
  if (reply->is_array() && !reply->elements.empty() && reply->elements[0].str == "IDEM") {
    const std::string existing = reply->elements.size() > 1 ? reply->elements[1].str : "";
    std::pair<std::string, std::string> parts = absl::StrSplit(existing, absl::MaxSplits('|', 1));
    if (parts.second != spec_hash) {
      return absl::AlreadyExistsError(absl::StrCat(
          "idempotency_key \"", c.idempotency_key(), "\" was used for chains/", parts.first,
          " with a different spec"));
    }
    absl::StatusOr<StoredChain> stored = Load(parts.first);
    if (!stored.ok()) {
      if (stored.status().code() == absl::StatusCode::kNotFound) {
        return absl::AlreadyExistsError(absl::StrCat("idempotency_key \"", c.idempotency_key(),
                                                     "\" was used for chains/", parts.first,
                                                     ", which has expired"));
      }
      return stored.status();
    }
    return SubmitOutcome{std::move(stored->chain), true};
  }
  if (absl::Status s = ScriptOutcome(*reply, "submit"); !s.ok()) return s;
  return SubmitOutcome{c, false};
}

absl::StatusOr<StoredChain> RedisChainStore::Load(const std::string& id) {
  auto conn = pool_.Acquire();
  absl::StatusOr<RedisValue> reply = conn->Command({"HMGET", ChainMetaKey(id), "pb", "qtoken"});
  if (!reply.ok()) return reply.status();
  if (!reply->is_array() || reply->elements.size() != 2) {
    return absl::InternalError("HMGET: unexpected reply");
  }
  return ParseStored(reply->elements[0], reply->elements[1], id);
}

absl::StatusOr<std::vector<absl::optional<conveyor::v1::State>>> RedisChainStore::States(
    const std::vector<std::string>& ids) {
  std::vector<absl::optional<conveyor::v1::State>> out;
  if (ids.empty()) return out;
  std::vector<std::vector<std::string>> commands;
  commands.reserve(ids.size());
  for (const std::string& id : ids) commands.push_back({"HGET", ChainMetaKey(id), "state"});
  auto conn = pool_.Acquire();
  absl::StatusOr<std::vector<RedisValue>> replies = conn->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  for (const RedisValue& r : *replies) {
    int state = 0;
    if (r.type == RedisValue::Type::kString && absl::SimpleAtoi(r.str, &state) &&
        conveyor::v1::State_IsValid(state)) {
      out.push_back(static_cast<conveyor::v1::State>(state));
    } else {
      out.push_back(absl::nullopt);
    }
  }
  return out;
}

absl::StatusOr<std::pair<StoredChain, absl::optional<std::string>>> RedisChainStore::LoadWithBlob(
    const std::string& id, int blob) {
  auto conn = pool_.Acquire();
  absl::StatusOr<std::vector<RedisValue>> replies =
      conn->Pipeline({{"HMGET", ChainMetaKey(id), "pb", "qtoken"}, {"GET", ChainBlobKey(id, blob)}});
  if (!replies.ok()) return replies.status();
  const RedisValue& meta = (*replies)[0];
  if (!meta.is_array() || meta.elements.size() != 2) {
    return absl::InternalError("HMGET: unexpected reply");
  }
  absl::StatusOr<StoredChain> stored = ParseStored(meta.elements[0], meta.elements[1], id);
  if (!stored.ok()) return stored.status();
  absl::optional<std::string> bytes;
  if ((*replies)[1].type == RedisValue::Type::kString) bytes = std::move((*replies)[1].str);
  return std::make_pair(*std::move(stored), std::move(bytes));
}

absl::Status RedisChainStore::Apply(int64_t expected_version, const Transition& t,
                                    const ApplyExtras& extras) {
  const std::string id = ChainIdFromName(t.chain.name());
  ScriptCall call(ChainMetaKey(id));
  AddTransitionOps(call, t, extras, options_, /*is_new=*/false);
  absl::StatusOr<RedisValue> reply;
  {
    auto conn = pool_.Acquire();
    reply = conn->Eval(apply_script_, call.keys(),
                       call.Args("cas", std::to_string(expected_version), ""));
  }
  if (!reply.ok()) return reply.status();
  if (reply->is_array() && !reply->elements.empty() && reply->elements[0].str == "STALE") {
    return StaleVersionError(expected_version,
                             reply->elements.size() > 1 ? reply->elements[1].str : "?");
  }
  return ScriptOutcome(*reply, t.chain.name());
}

absl::StatusOr<std::vector<QueueEntry>> RedisChainStore::ParseEntries(const RedisValue& entries,
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

absl::StatusOr<std::vector<QueueEntry>> RedisChainStore::ClaimReady(const std::string& consumer,
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

absl::StatusOr<std::vector<QueueEntry>> RedisChainStore::Reclaim(const std::string& consumer,
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

absl::Status RedisChainStore::Heartbeat(const std::string& consumer,
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

absl::Status RedisChainStore::Ack(const QueueEntry& entry,
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

absl::StatusOr<absl::optional<absl::Time>> RedisChainStore::PromoteDue(absl::Time now) {
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

absl::StatusOr<ListPage> RedisChainStore::List(const ListQuery& q) {
  // The most selective index: state, else a label, else all.
  std::string index = std::string(kAllIndexKey);
  bool index_is_label = false;
  if (q.state != conveyor::v1::STATE_UNSPECIFIED) {
    index = StateIndexKey(q.state);
  } else if (!q.labels.empty()) {
    index = LabelIndexKey(q.labels.begin()->first, q.labels.begin()->second);
    index_is_label = true;
  }
  std::string max = "+inf";
  std::string min = "-inf";
  int64_t token_score = 0;
  std::string token_id;
  bool has_token = false;
  if (!q.page_token.empty()) {
    if (!DecodePageToken(q.page_token, token_score, token_id)) {
      return InvalidField("page_token", "not a token from a previous ListChains response");
    }
    has_token = true;
  }
  if (q.created_before.has_value()) max = absl::StrCat("(", ToMs(*q.created_before));
  if (has_token) {
    int64_t m = token_score;
    if (q.created_before.has_value()) m = std::min(m, ToMs(*q.created_before) - 1);
    max = std::to_string(m);
  }
  if (q.created_after.has_value()) min = std::to_string(ToMs(*q.created_after));

  ListPage page;
  int64_t page_bytes = 128;  // room for next_page_token and its tag
  bool full_by_bytes = false;
  // The last chain put on the page: a page full by bytes continues after it.
  int64_t returned_score = 0;
  std::string returned_id;
  auto conn = pool_.Acquire();
  int64_t offset = 0;
  // Filters without an index (stage, error reason, end time, more labels)
  // discard chains after they are read: read bigger batches then.
  const bool post_filtered = q.stage != conveyor::v1::STAGE_KIND_UNSPECIFIED ||
                             !q.error_reason.empty() || q.ended_after.has_value() ||
                             q.ended_before.has_value() ||
                             q.labels.size() > (index_is_label ? 1u : 0u);
  const int batch = std::max(q.page_size + 1, post_filtered ? 256 : 64);
  // Where the scan got to: a page cut short by the budget resumes there.
  int64_t last_score = 0;
  std::string last_id;
  bool exhausted = false;
  // Bounded: each round reads `batch` index entries, max_scan in all.
  const int64_t max_scan = std::clamp<int64_t>(q.max_scan, 1, kMaxListScan);
  while (page.scanned < max_scan) {
    const int64_t want = std::min<int64_t>(batch, max_scan - page.scanned);
    absl::StatusOr<RedisValue> ids =
        conn->Command({"ZREVRANGEBYSCORE", index, max, min, "WITHSCORES", "LIMIT",
                       std::to_string(offset), std::to_string(want)});
    if (!ids.ok()) return ids.status();
    if (!ids->is_array() || ids->elements.empty()) {
      exhausted = true;
      break;
    }
    std::vector<std::pair<std::string, int64_t>> candidates;
    for (size_t i = 0; i + 1 < ids->elements.size(); i += 2) {
      double score = 0;
      absl::SimpleAtod(ids->elements[i + 1].str, &score);
      const std::string& id = ids->elements[i].str;
      const int64_t s = static_cast<int64_t>(score);
      // Same-millisecond chains come in reverse id order: skip those the
      // previous page already returned.
      if (has_token && s == token_score && id >= token_id) continue;
      candidates.emplace_back(id, s);
    }
    // Entries the token skips do not count: they are at most the chains of
    // the token's millisecond, and counting them could stall a small budget.
    page.scanned += static_cast<int64_t>(candidates.size());
    offset += static_cast<int64_t>(ids->elements.size() / 2);
    std::vector<std::vector<std::string>> gets;
    gets.reserve(candidates.size());
    for (const auto& [id, score] : candidates) gets.push_back({"HGET", ChainMetaKey(id), "pb"});
    absl::StatusOr<std::vector<RedisValue>> metas = conn->Pipeline(gets);
    if (!metas.ok()) return metas.status();
    std::vector<std::vector<std::string>> cleanup;
    int64_t removed = 0;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const auto& [id, score] = candidates[i];
      const RedisValue& pb = (*metas)[i];
      last_score = score;
      last_id = id;
      if (pb.is_nil()) {
        // Expired by retention: drop its index entries lazily.
        cleanup.push_back({"ZREM", std::string(kAllIndexKey), id});
        cleanup.push_back({"ZREM", index, id});
        for (State s : kAllStates) cleanup.push_back({"ZREM", StateIndexKey(s), id});
        ++removed;
        continue;
      }
      Chain chain;
      if (!chain.ParseFromString(pb.str)) continue;
      if (!ChainMatches(q, chain)) continue;
      // A repeated message field costs its size plus a tag byte and a length
      // varint (at most 5 bytes).
      const int64_t chain_bytes = static_cast<int64_t>(chain.ByteSizeLong()) + 6;
      if (q.max_page_bytes > 0 && !page.chains.empty() &&
          page_bytes + chain_bytes > q.max_page_bytes) {
        page.next_page_token = EncodePageToken(returned_score, returned_id);
        full_by_bytes = true;
        break;
      }
      page_bytes += chain_bytes;
      returned_score = score;
      returned_id = id;
      page.chains.push_back(std::move(chain));
      if (static_cast<int>(page.chains.size()) == q.page_size) {
        page.next_page_token = EncodePageToken(score, id);
        break;
      }
    }
    if (!cleanup.empty()) {
      if (absl::Status s = conn->Pipeline(cleanup).status(); !s.ok()) return s;
      offset -= removed;  // those index entries are gone: later ones moved up
    }
    if (static_cast<int>(page.chains.size()) == q.page_size || full_by_bytes) break;
    if (static_cast<int64_t>(ids->elements.size() / 2) < want) {
      exhausted = true;
      break;
    }
  }
  if (static_cast<int>(page.chains.size()) < q.page_size && !full_by_bytes && !exhausted &&
      !last_id.empty()) {
    // The scan budget ran out before the page filled: hand out a token at the
    // last entry read, so the caller goes on from there.
    page.next_page_token = EncodePageToken(last_score, last_id);
  }
  if (static_cast<int>(page.chains.size()) == q.page_size && !page.next_page_token.empty()) {
    // Only hand out a token if something older exists.
    int64_t score = 0;
    std::string id;
    DecodePageToken(page.next_page_token, score, id);
    absl::StatusOr<RedisValue> more = conn->Command(
        {"ZREVRANGEBYSCORE", index, std::to_string(score), min, "WITHSCORES", "LIMIT", "0", "64"});
    if (!more.ok()) return more.status();
    bool any = false;
    for (size_t i = 0; more->is_array() && i + 1 < more->elements.size(); i += 2) {
      double s = 0;
      absl::SimpleAtod(more->elements[i + 1].str, &s);
      if (static_cast<int64_t>(s) < score || more->elements[i].str < id) any = true;
    }
    if (!any && more->is_array() && more->elements.size() / 2 == 64) any = true;
    if (!any) page.next_page_token.clear();
  }
  return page;
}

absl::StatusOr<PurgeOutcome> RedisChainStore::Purge(State state, absl::Time ended_before,
                                                    bool dry_run) {
  std::vector<State> states;
  if (state == conveyor::v1::STATE_UNSPECIFIED) {
    states = {conveyor::v1::SUCCEEDED, conveyor::v1::FAILED, conveyor::v1::CANCELLED};
  } else {
    states = {state};
  }
  PurgeOutcome out;
  const int64_t cutoff_ms = ToMs(ended_before);
  auto conn = pool_.Acquire();
  for (State s : states) {
    const std::string index = StateIndexKey(s);
    int64_t offset = 0;
    for (int round = 0; round < 100000; ++round) {
      // A chain ends after it is created: only those created before the
      // cutoff can qualify.
      absl::StatusOr<RedisValue> ids =
          conn->Command({"ZRANGEBYSCORE", index, "-inf", std::to_string(cutoff_ms), "LIMIT",
                         std::to_string(offset), "500"});
      if (!ids.ok()) return ids.status();
      if (!ids->is_array() || ids->elements.empty()) break;
      std::vector<std::vector<std::string>> gets;
      for (const RedisValue& id : ids->elements) {
        gets.push_back({"HMGET", ChainMetaKey(id.str), "pb", "end_ms", "version"});
      }
      absl::StatusOr<std::vector<RedisValue>> metas = conn->Pipeline(gets);
      if (!metas.ok()) return metas.status();
      int64_t kept = 0;
      for (size_t i = 0; i < ids->elements.size(); ++i) {
        const std::string& id = ids->elements[i].str;
        const RedisValue& m = (*metas)[i];
        if (!m.is_array() || m.elements.size() != 3 || m.elements[0].is_nil()) {
          if (!dry_run) {
            std::vector<std::vector<std::string>> cleanup = {{"ZREM", index, id},
                                                             {"ZREM", std::string(kAllIndexKey), id}};
            if (absl::Status st = conn->Pipeline(cleanup).status(); !st.ok()) return st;
          } else {
            ++kept;
          }
          continue;
        }
        int64_t end_ms = 0;
        absl::SimpleAtoi(m.elements[1].str, &end_ms);
        Chain chain;
        chain.ParseFromString(m.elements[0].str);
        if (!IsTerminal(chain.state()) || end_ms > cutoff_ms) {
          ++kept;
          continue;
        }
        if (!dry_run) {
          ScriptCall call(ChainMetaKey(id));
          call.Op("DEL", ChainMetaKey(id), {});
          call.Op("DEL", ChainEventsKey(id), {});
          for (int blob : BlobIndexes(chain)) call.BlobDel(ChainBlobKey(id, blob));
          call.Op("ZREM", std::string(kBlobExpiryKey), {id});
          call.Op("ZREM", std::string(kAllIndexKey), {id});
          call.Op("ZREM", StateIndexKey(chain.state()), {id});
          for (const auto& [k, v] : chain.spec().labels()) call.Op("ZREM", LabelIndexKey(k, v), {id});
          absl::StatusOr<RedisValue> r =
              conn->Eval(apply_script_, call.keys(), call.Args("cas", m.elements[2].str, ""));
          if (!r.ok()) return r.status();
          if (!ScriptOutcome(*r, "purge").ok()) {
            ++kept;  // changed meanwhile (e.g. retried): not purged
            continue;
          }
        } else {
          ++kept;
        }
        ++out.count;
        if (out.sample_names.size() < 100) out.sample_names.push_back(chain.name());
      }
      offset += kept;
      if (ids->elements.size() < 500) break;
    }
  }
  return out;
}

absl::StatusOr<EventBatch> RedisChainStore::Events(const std::string& id,
                                                   const std::string& after_id, int count,
                                                   absl::Duration block) {
  std::vector<std::string> argv = {"XREAD", "COUNT", std::to_string(count)};
  if (block > absl::ZeroDuration()) {
    argv.push_back("BLOCK");
    argv.push_back(std::to_string(absl::ToInt64Milliseconds(block)));
  }
  argv.push_back("STREAMS");
  argv.push_back(ChainEventsKey(id));
  // ChainApi::ParseEventId checks ids from callers; this keeps any other
  // caller's malformed id from reaching Redis as "ERR Invalid stream ID".
  if (!after_id.empty() && !IsStreamId(after_id)) {
    return InvalidField("after_event_id",
                        "want an event id \"<ms>-<seq>\" from ChainEvent.event_id");
  }
  argv.push_back(after_id.empty() ? "0" : after_id);
  auto conn = pool_.Acquire();
  absl::StatusOr<RedisValue> reply = conn->Command(argv);
  if (!reply.ok()) return reply.status();
  EventBatch batch;
  if (!reply->is_array()) return batch;
  for (const RedisValue& stream : reply->elements) {
    if (!stream.is_array() || stream.elements.size() != 2) continue;
    for (const RedisValue& entry : stream.elements[1].elements) {
      if (!entry.is_array() || entry.elements.size() != 2) continue;
      const RedisValue& fields = entry.elements[1];
      for (size_t i = 0; fields.is_array() && i + 1 < fields.elements.size(); i += 2) {
        if (fields.elements[i].str != "e") continue;
        conveyor::v1::ChainEvent e;
        if (!e.ParseFromString(fields.elements[i + 1].str)) continue;
        e.set_event_id(entry.elements[0].str);
        batch.events.push_back(std::move(e));
      }
    }
  }
  return batch;
}

absl::StatusOr<std::vector<int>> RedisChainStore::MissingBlobs(const std::string& id,
                                                               const std::vector<int>& blobs) {
  std::vector<int> missing;
  if (blobs.empty()) return missing;
  std::vector<std::vector<std::string>> commands;
  for (int blob : blobs) commands.push_back({"EXISTS", ChainBlobKey(id, blob)});
  auto conn = pool_.Acquire();
  absl::StatusOr<std::vector<RedisValue>> replies = conn->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  for (size_t i = 0; i < blobs.size(); ++i) {
    const RedisValue& r = (*replies)[i];
    if (r.is_error()) return absl::InternalError(r.str);
    if (r.integer == 0) missing.push_back(blobs[i]);
  }
  return missing;
}

absl::StatusOr<int> RedisChainStore::FreeExpiredBlobs(absl::Time now, int max_chains) {
  const std::string now_ms = std::to_string(ToMs(now));
  auto conn = pool_.Acquire();
  absl::StatusOr<RedisValue> due =
      conn->Command({"ZRANGEBYSCORE", std::string(kBlobExpiryKey), "-inf", now_ms, "LIMIT", "0",
                     std::to_string(max_chains)});
  if (!due.ok()) return due.status();
  int freed = 0;
  for (size_t i = 0; due->is_array() && i < due->elements.size(); ++i) {
    const std::string& id = due->elements[i].str;
    absl::StatusOr<RedisValue> pb = conn->Command({"HGET", ChainMetaKey(id), "pb"});
    if (!pb.ok()) return pb.status();
    std::vector<int> blobs;
    Chain chain;
    if (!pb->is_nil() && chain.ParseFromString(pb->str)) {
      blobs = BlobIndexes(chain);
    } else {
      // The record expired first: try every index a chain can have.
      for (int b = 0; b <= kMaxSteps; ++b) blobs.push_back(b);
    }
    // 'due' re-checks the member's score inside the script: a chain retried
    // since the read above is no longer in the set and keeps its images.
    ScriptCall call{std::string(kBlobExpiryKey)};
    for (int b : blobs) call.BlobDel(ChainBlobKey(id, b));
    call.Op("ZREM", std::string(kBlobExpiryKey), {id});
    absl::StatusOr<RedisValue> r =
        conn->Eval(apply_script_, call.keys(), call.Args("due", id, now_ms));
    if (!r.ok()) return r.status();
    if (r->is_array() && !r->elements.empty() && r->elements[0].str == "OK") ++freed;
  }
  return freed;
}

absl::Status RedisChainStore::ReportReplica(const ReplicaInfo& replica, absl::Duration ttl) {
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
                   std::to_string(absl::ToInt64Milliseconds(ttl))}})
      .status();
}

absl::StatusOr<StoreStatus> RedisChainStore::Status(absl::Time live_after) {
  auto conn = pool_.Acquire();
  std::vector<std::vector<std::string>> commands = {
      {"HGETALL", std::string(kStatsKey)},
      {"ZRANGEBYSCORE", std::string(kReplicasKey), std::to_string(ToMs(live_after)), "+inf",
       "WITHSCORES"},
      {"ZREMRANGEBYSCORE", std::string(kReplicasKey), "-inf",
       std::to_string(ToMs(live_after - absl::Hours(1)))}};
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
    out.chains_by_state[conveyor::v1::State_Name(kAllStates[i])] = (*replies)[3 + i].integer;
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

absl::StatusOr<absl::Duration> RedisChainStore::Ping() {
  auto conn = pool_.Acquire();
  const absl::Time start = absl::Now();
  absl::StatusOr<RedisValue> reply = conn->Command({"PING"});
  if (!reply.ok()) return reply.status();
  return absl::Now() - start;
}

}  // namespace conveyor::orchestrator
