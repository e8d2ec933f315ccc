#include "orchestrator/redis_transition_script.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/stage_registry.h"
#include "common/status_details.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;

int64_t CreateMs(const Chain& chain) {
  return chain.create_time().seconds() * 1000 + chain.create_time().nanos() / 1000000;
}

absl::Status ScriptOutcome(const RedisValue& reply, const std::string& what, const Chain* chain,
                           const TenantQuotas& quotas) {
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
  if (tag == "QUOTA" && reply.elements.size() > 2) {
    const std::string& quota = reply.elements[2].str;
    return TenantQuotaError(quota, chain != nullptr ? ChainTenant(*chain) : "?",
                            quota == "chains_in_flight" ? quotas.max_chains_in_flight
                                                        : quotas.max_stored_bytes,
                            arg);
  }
  return absl::InternalError(absl::StrCat(what, ": unexpected reply from the chain store"));
}

void AddTenantQuotaChecks(ScriptCall& call, const Chain& chain, int64_t incoming,
                          const TenantQuotas& quotas) {
  const std::string tenant = ChainTenant(chain);
  call.Cap(TenantInFlightKey(tenant), quotas.max_chains_in_flight, 1, "chains_in_flight");
  if (incoming >= 0) {
    call.Cap(TenantBlobBytesKey(tenant), quotas.max_stored_bytes, incoming, "stored_bytes");
  }
}

// Adds the effects of `t` to `call`.
void AddTransitionOps(ScriptCall& call, const Transition& t, const ApplyExtras& extras,
                      const RedisChainStoreOptions& options, bool is_new) {
  const absl::Duration retention = options.retention;
  const Chain& c = t.chain;
  const std::string id = ChainIdFromName(c.name());
  const std::string meta = ChainMetaKey(id);
  const std::string tenant = ChainTenant(c);
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
    call.BlobSet(ChainBlobKey(id, t.effects.output_blob), *extras.output_blob, tenant);
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
      call.BlobDel(ChainBlobKey(id, blob), tenant);
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
  // The tenant's chains in flight: one more when a chain starts or resumes,
  // one less when it reaches a terminal state.
  const int in_flight = (is_new || t.effects.persist ? 1 : 0) - (t.effects.expire ? 1 : 0);
  if (in_flight != 0) call.Op("INCRBY", TenantInFlightKey(tenant), {std::to_string(in_flight)});
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

}  // namespace conveyor::orchestrator
