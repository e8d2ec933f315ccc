#include "orchestrator/redis_chain_records.h"

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

namespace {

// An event cursor this store gave out: a stream id, "<ms>" or "<ms>-<seq>",
// each a decimal that fits 64 bits unsigned.
bool IsStreamId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxEventIdBytes) return false;
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(id, absl::MaxSplits('-', 1));
  uint64_t n = 0;
  auto digits = [&n](absl::string_view v) {
    if (v.empty()) return false;
    for (char c : v) {
      if (c < '0' || c > '9') return false;
    }
    return absl::SimpleAtoi(v, &n);  // false when over 2^64-1
  };
  if (!digits(parts.first)) return false;
  return id.find('-') == absl::string_view::npos || digits(parts.second);
}

}  // namespace

RedisChainRecords::RedisChainRecords(RedisConnectionPool& pool, RedisChainStoreOptions options)
    : pool_(pool), options_(options), apply_script_(scripts::kApplyLua) {}

absl::StatusOr<SubmitOutcome> RedisChainRecords::Submit(const Transition& t,
                                                      const std::string& spec_hash,
                                                      const std::string* source_bytes) {
  const Chain& c = t.chain;
  const std::string id = ChainIdFromName(c.name());
  ScriptCall call(ChainMetaKey(id));
  std::string idem_value;
  if (!c.idempotency_key().empty()) {
    call.Key(IdempotencyKey(ChainTenant(c), c.idempotency_key()));
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
  const int64_t incoming = source_bytes != nullptr ? source_bytes->size() : 0;
  AddTenantQuotaChecks(call, c, incoming, options_.tenant_quotas);
  if (source_bytes != nullptr) call.BlobSet(ChainBlobKey(id, 0), *source_bytes, ChainTenant(c));
  const std::string score = std::to_string(CreateMs(c));
  call.Op("ZADD", std::string(kAllIndexKey), {score, id});
  call.Op("ZADD", TenantIndexKey(ChainTenant(c)), {score, id});
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
  if (absl::Status s = ScriptOutcome(*reply, "submit", &c, options_.tenant_quotas); !s.ok()) {
    return s;
  }
  return SubmitOutcome{c, false};
}

absl::StatusOr<StoredChain> RedisChainRecords::Load(const std::string& id) {
  auto conn = pool_.Acquire();
  absl::StatusOr<RedisValue> reply = conn->Command({"HMGET", ChainMetaKey(id), "pb", "qtoken"});
  if (!reply.ok()) return reply.status();
  if (!reply->is_array() || reply->elements.size() != 2) {
    return absl::InternalError("HMGET: unexpected reply");
  }
  return ParseStored(reply->elements[0], reply->elements[1], id);
}

absl::StatusOr<std::vector<absl::optional<conveyor::v1::State>>> RedisChainRecords::States(
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

absl::StatusOr<std::pair<StoredChain, absl::optional<std::string>>> RedisChainRecords::LoadWithBlob(
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

absl::Status RedisChainRecords::Apply(int64_t expected_version, const Transition& t,
                                    const ApplyExtras& extras) {
  const std::string id = ChainIdFromName(t.chain.name());
  ScriptCall call(ChainMetaKey(id));
  if (t.effects.persist) AddTenantQuotaChecks(call, t.chain, -1, options_.tenant_quotas);
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
  return ScriptOutcome(*reply, t.chain.name(), &t.chain, options_.tenant_quotas);
}

absl::StatusOr<EventBatch> RedisChainRecords::Events(const std::string& id,
                                                   const std::string& after_id, int count,
                                                   absl::Duration block) {
  std::vector<std::string> argv = {"XREAD", "COUNT", std::to_string(count)};
  if (block > absl::ZeroDuration()) {
    argv.push_back("BLOCK");
    argv.push_back(std::to_string(absl::ToInt64Milliseconds(block)));
  }
  argv.push_back("STREAMS");
  argv.push_back(ChainEventsKey(id));
  // A malformed cursor is the caller's error, not Redis's "ERR Invalid
  // stream ID".
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

absl::StatusOr<std::vector<int>> RedisChainRecords::MissingBlobs(const std::string& id,
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

absl::StatusOr<int> RedisChainRecords::FreeExpiredBlobs(absl::Time now, int max_chains) {
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
    // If the record expired first, the tenant's counter cannot be told what
    // was freed: it keeps those bytes (the backstop TTL outlives the record
    // by an hour, and the sweep runs every minute, so this needs a sweep
    // stopped for that long).
    if (!pb->is_nil() && chain.ParseFromString(pb->str)) {
      blobs = BlobIndexes(chain);
    } else {
      // The record expired first: try every index a chain can have.
      for (int b = 0; b <= kMaxSteps; ++b) blobs.push_back(b);
    }
    // 'due' re-checks the member's score inside the script: a chain retried
    // since the read above is no longer in the set and keeps its images.
    ScriptCall call{std::string(kBlobExpiryKey)};
    for (int b : blobs) call.BlobDel(ChainBlobKey(id, b), ChainTenant(chain));
    call.Op("ZREM", std::string(kBlobExpiryKey), {id});
    absl::StatusOr<RedisValue> r =
        conn->Eval(apply_script_, call.keys(), call.Args("due", id, now_ms));
    if (!r.ok()) return r.status();
    if (r->is_array() && !r->elements.empty() && r->elements[0].str == "OK") ++freed;
  }
  return freed;
}

}  // namespace conveyor::orchestrator
