#include "orchestrator/redis_chain_index.h"

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
#include "orchestrator/caller.h"
#include "orchestrator/chain_filter.h"
#include "orchestrator/chain_validator.h"
#include "orchestrator/redis/redis_keys.h"
#include "orchestrator/redis/scripts.h"
#include "orchestrator/redis_transition_script.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;
using conveyor::v1::State;

namespace {

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

RedisChainIndex::RedisChainIndex(RedisConnectionPool& pool)
    : pool_(pool), apply_script_(scripts::kApplyLua) {}

absl::StatusOr<ListPage> RedisChainIndex::List(const ListQuery& q) {
  // The most selective index: state, else a label, else the tenant's, else
  // all.
  std::string index = std::string(kAllIndexKey);
  bool index_is_label = false;
  bool index_is_tenant = false;
  if (q.state != conveyor::v1::STATE_UNSPECIFIED) {
    index = StateIndexKey(q.state);
  } else if (!q.labels.empty()) {
    index = LabelIndexKey(q.labels.begin()->first, q.labels.begin()->second);
    index_is_label = true;
  } else if (!q.tenant.empty() && q.tenant != kDefaultTenant) {
    // kDefaultTenant's chains include those recorded before tenants, which
    // no tenant index holds: they are found through the all index.
    index = TenantIndexKey(q.tenant);
    index_is_tenant = true;
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
                             q.labels.size() > (index_is_label ? 1u : 0u) ||
                             (!q.tenant.empty() && !index_is_tenant);
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
    for (size_t i = 0; i < candidates.size(); ++i) {
      const auto& [id, score] = candidates[i];
      const RedisValue& pb = (*metas)[i];
      last_score = score;
      last_id = id;
      // Expired by retention: skipped here (a read), removed by Purge.
      if (pb.is_nil()) continue;
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

absl::StatusOr<PurgeOutcome> RedisChainIndex::Purge(State state, absl::Time ended_before,
                                                    const std::string& tenant, bool dry_run) {
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
        if (!IsTerminal(chain.state()) || end_ms > cutoff_ms ||
            (!tenant.empty() && ChainTenant(chain) != tenant)) {
          ++kept;
          continue;
        }
        if (!dry_run) {
          ScriptCall call(ChainMetaKey(id));
          call.Op("DEL", ChainMetaKey(id), {});
          call.Op("DEL", ChainEventsKey(id), {});
          for (int blob : BlobIndexes(chain)) call.BlobDel(ChainBlobKey(id, blob), ChainTenant(chain));
          call.Op("ZREM", std::string(kBlobExpiryKey), {id});
          call.Op("ZREM", std::string(kAllIndexKey), {id});
          call.Op("ZREM", TenantIndexKey(ChainTenant(chain)), {id});
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

}  // namespace conveyor::orchestrator
