// InMemoryChainStore's ChainIndex and ReplicaRegistry: list, purge,
// replicas and status.
#include "tests/testing/in_memory_chain_store.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/stage_registry.h"
#include "common/status_details.h"
#include "orchestrator/chain_filter.h"

namespace conveyor::orchestrator::testing {

using conveyor::v1::Chain;
using conveyor::v1::State;

namespace {

int64_t CreateMs(const Chain& chain) { return absl::ToUnixMillis(FromProtoTime(chain.create_time())); }

// Newest first, as the Redis index reads: by create time, then by id.
bool Newer(const Chain& a, const Chain& b) {
  return std::make_tuple(CreateMs(a), a.name()) > std::make_tuple(CreateMs(b), b.name());
}

std::string PageToken(const Chain& chain) {
  return absl::StrCat(CreateMs(chain), ":", chain.name());
}

}  // namespace

absl::StatusOr<ListPage> InMemoryChainStore::List(const ListQuery& q) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  std::vector<const Chain*> sorted;
  for (const auto& [id, record] : chains_) sorted.push_back(&record.stored.chain);
  std::sort(sorted.begin(), sorted.end(), [](const Chain* a, const Chain* b) { return Newer(*a, *b); });
  ListPage page;
  bool after_token = q.page_token.empty();
  const int64_t max_scan = std::clamp<int64_t>(q.max_scan, 1, kMaxListScan);
  int64_t page_bytes = 128;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const Chain& chain = *sorted[i];
    if (!after_token) {
      after_token = PageToken(chain) == q.page_token;
      continue;
    }
    if (q.state != conveyor::v1::STATE_UNSPECIFIED && chain.state() != q.state) continue;
    const absl::Time created = FromProtoTime(chain.create_time());
    if (q.created_after.has_value() && created < *q.created_after) continue;
    if (q.created_before.has_value() && created >= *q.created_before) continue;
    if (page.scanned++ >= max_scan) {
      page.next_page_token = page.chains.empty() ? PageToken(chain) : PageToken(page.chains.back());
      break;
    }
    if (!ChainMatches(q, chain)) continue;
    const int64_t chain_bytes = static_cast<int64_t>(chain.ByteSizeLong()) + 6;
    const bool full = static_cast<int>(page.chains.size()) == q.page_size ||
                      (q.max_page_bytes > 0 && !page.chains.empty() &&
                       page_bytes + chain_bytes > q.max_page_bytes);
    if (full) {
      page.next_page_token = PageToken(page.chains.back());
      break;
    }
    page_bytes += chain_bytes;
    page.chains.push_back(chain);
  }
  if (!after_token) return InvalidField("page_token", "not a token from a previous ListChains response");
  return page;
}

absl::StatusOr<PurgeOutcome> InMemoryChainStore::Purge(State state, absl::Time ended_before,
                                                       const std::string& tenant, bool dry_run) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  PurgeOutcome out;
  for (auto it = chains_.begin(); it != chains_.end();) {
    const Chain& chain = it->second.stored.chain;
    const bool selected = IsTerminal(chain.state()) &&
                          (state == conveyor::v1::STATE_UNSPECIFIED || chain.state() == state) &&
                          FromProtoTime(chain.end_time()) <= ended_before &&
                          (tenant.empty() || ChainTenant(chain) == tenant);
    if (!selected) {
      ++it;
      continue;
    }
    ++out.count;
    if (out.sample_names.size() < 100) out.sample_names.push_back(chain.name());
    if (dry_run) {
      ++it;
      continue;
    }
    while (!it->second.blobs.empty()) DeleteBlob(it->second, it->second.blobs.begin()->first);
    it = chains_.erase(it);
  }
  return out;
}

absl::Status InMemoryChainStore::ReportReplica(const ReplicaInfo& replica, absl::Duration ttl) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  replicas_[replica.name] = {replica, clock_.Now() + ttl};
  return absl::OkStatus();
}

absl::StatusOr<StoreStatus> InMemoryChainStore::Status(absl::Time live_after) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  StoreStatus out;
  out.blob_bytes = blob_bytes_;
  for (const StageInfo& stage : Stages()) out.stages[std::string(stage.name)];
  for (const auto& [field, n] : stats_) {
    std::pair<std::string, std::string> parts = absl::StrSplit(field, absl::MaxSplits('.', 1));
    StageCounters& c = out.stages[parts.first];
    if (parts.second == "queued") c.queued = std::max<int64_t>(0, n);
    if (parts.second == "succeeded") c.succeeded = n;
    if (parts.second == "failed") c.failed = n;
    if (parts.second == "retried") c.retried = n;
  }
  for (int s = conveyor::v1::State_MIN; s <= conveyor::v1::State_MAX; ++s) {
    if (s != conveyor::v1::STATE_UNSPECIFIED && conveyor::v1::State_IsValid(s)) {
      out.chains_by_state[State_Name(static_cast<State>(s))] = 0;
    }
  }
  for (const auto& [id, record] : chains_) {
    ++out.chains_by_state[State_Name(record.stored.chain.state())];
  }
  const absl::Time now = clock_.Now();
  for (const auto& [name, entry] : replicas_) {
    const auto& [replica, expires] = entry;
    if (replica.heartbeat < live_after || expires <= now) continue;
    out.replicas.push_back(replica);
    for (const auto& [stage, n] : replica.in_flight) out.stages[stage].in_flight += n;
    for (const auto& [stage, n] : replica.waiting) out.stages[stage].waiting += n;
  }
  return out;
}

absl::StatusOr<absl::Duration> InMemoryChainStore::Ping() {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  return absl::ZeroDuration();
}

}  // namespace conveyor::orchestrator::testing
