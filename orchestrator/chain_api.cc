#include "orchestrator/chain_api.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/rand.h>
#include <openssl/evp.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "orchestrator/chain_filter.h"
#include "orchestrator/chain_validator.h"
#include "orchestrator/redis/redis_keys.h"
#include "stages/common/image_header.h"
#include "stages/common/status_details.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;

namespace {

std::string NewChainId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // Extremely unlikely; fall back to time-based uniqueness.
    const int64_t now = absl::ToUnixNanos(absl::Now());
    for (size_t i = 0; i < sizeof(bytes); ++i) bytes[i] = static_cast<unsigned char>(now >> (i % 8 * 8));
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

std::string SpecHash(const conveyor::v1::ChainSpec& spec, const std::string& source) {
  std::string serialized;
  {
    google::protobuf::io::StringOutputStream out(&serialized);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    spec.SerializeToCodedStream(&coded);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, serialized.data(), serialized.size());
  EVP_DigestUpdate(ctx, source.data(), source.size());
  EVP_DigestFinal_ex(ctx, digest, &digest_len);
  EVP_MD_CTX_free(ctx);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), digest_len));
}

constexpr conveyor::v1::StageKind kStages[] = {
    conveyor::v1::STAGE_KIND_DOWNLOAD, conveyor::v1::STAGE_KIND_RESIZE,
    conveyor::v1::STAGE_KIND_FILTER, conveyor::v1::STAGE_KIND_UPLOAD,
    conveyor::v1::STAGE_KIND_WEBHOOK};

}  // namespace

absl::StatusOr<std::string> ChainApi::ParseChainName(const std::string& name) {
  std::string id = ChainIdFromName(name);
  bool ok = !id.empty() && id.size() <= 64;
  for (char c : id) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!ok) {
    return InvalidField("name", absl::StrCat("want chains/<32 hex digits>, got \"", name, "\""));
  }
  return id;
}

absl::StatusOr<Chain> ChainApi::Submit(const conveyor::v1::SubmitChainRequest& request) {
  const std::string& source = request.source().data();
  const bool has_source = !source.empty();
  if (absl::Status s = ValidateIdempotencyKey(request.idempotency_key()); !s.ok()) return s;
  if (absl::Status s = ValidateChainSpec(request.spec(), has_source); !s.ok()) return s;
  absl::optional<conveyor::v1::ImageInfo> info;
  if (has_source) {
    if (static_cast<int64_t>(source.size()) > options_.max_intermediate_bytes) {
      return InvalidField("source.data",
                          absl::StrCat(source.size(), " bytes is over --max-intermediate-bytes ",
                                       options_.max_intermediate_bytes));
    }
    absl::StatusOr<ImageHeader> header = ParseImageHeader(source);
    if (!header.ok()) return InvalidField("source.data", header.status().message());
    conveyor::v1::ImageInfo i;
    i.set_media_type(std::string(MediaTypeOf(header->kind)));
    i.set_width(header->width);
    i.set_height(header->height);
    i.set_size_bytes(static_cast<int64_t>(source.size()));
    info = i;
  }
  Transition t = scheduler_.Submit(request.spec(), NewChainId(), request.idempotency_key(), info);
  absl::StatusOr<SubmitOutcome> out =
      store_.Submit(t, SpecHash(request.spec(), source), has_source ? &source : nullptr);
  if (!out.ok()) return out.status();
  return std::move(out->chain);
}

absl::StatusOr<Chain> ChainApi::Get(const std::string& name) {
  absl::StatusOr<std::string> id = ParseChainName(name);
  if (!id.ok()) return id.status();
  absl::StatusOr<StoredChain> stored = store_.Load(*id);
  if (!stored.ok()) return stored.status();
  return std::move(stored->chain);
}

absl::StatusOr<conveyor::v1::ListChainsResponse> ChainApi::List(
    const conveyor::v1::ListChainsRequest& request) {
  absl::StatusOr<ListQuery> q = ListQueryFromRequest(request);
  if (!q.ok()) return q.status();
  absl::StatusOr<ListPage> page = store_.List(*q);
  if (!page.ok()) return page.status();
  conveyor::v1::ListChainsResponse response;
  for (Chain& c : page->chains) *response.add_chains() = std::move(c);
  response.set_next_page_token(page->next_page_token);
  return response;
}

absl::StatusOr<ChainApi::ActionOutcome> ChainApi::ApplyAction(const std::string& id,
                                                             ChainAction action,
                                                             const ListQuery* must_match,
                                                             bool dry_run) {
  for (int round = 0; round < 5; ++round) {
    absl::StatusOr<StoredChain> stored = store_.Load(id);
    if (!stored.ok()) return stored.status();
    if (must_match != nullptr && !ChainMatches(*must_match, stored->chain)) {
      return ActionOutcome{std::move(stored->chain), false, false};
    }
    absl::StatusOr<Transition> t = (scheduler_.*action)(stored->chain);
    if (!t.ok()) return t.status();
    if (!t->changed || dry_run) return ActionOutcome{std::move(t->chain), t->changed, true};
    absl::Status applied = store_.Apply(stored->chain.version(), *t, {});
    if (applied.ok()) return ActionOutcome{std::move(t->chain), true, true};
    if (!IsStaleVersion(applied)) return applied;
  }
  return absl::AbortedError("the chain kept changing; try again");
}

absl::StatusOr<Chain> ChainApi::Cancel(const std::string& name) {
  absl::StatusOr<std::string> id = ParseChainName(name);
  if (!id.ok()) return id.status();
  absl::StatusOr<ActionOutcome> out = ApplyAction(*id, &Scheduler::Cancel, nullptr, false);
  if (!out.ok()) return out.status();
  return std::move(out->chain);
}

absl::StatusOr<Chain> ChainApi::Retry(const std::string& name) {
  absl::StatusOr<std::string> id = ParseChainName(name);
  if (!id.ok()) return id.status();
  absl::StatusOr<ActionOutcome> out = ApplyAction(*id, &Scheduler::Retry, nullptr, false);
  if (!out.ok()) return out.status();
  return std::move(out->chain);
}

absl::StatusOr<conveyor::v1::BulkChainsResponse> ChainApi::CancelMany(
    const conveyor::v1::CancelChainsRequest& request) {
  return ApplyToMatching(request.filter(), request.dry_run(), request.max_chains(),
                         &Scheduler::Cancel);
}

absl::StatusOr<conveyor::v1::BulkChainsResponse> ChainApi::RetryMany(
    const conveyor::v1::RetryChainsRequest& request) {
  return ApplyToMatching(request.filter(), request.dry_run(), request.max_chains(),
                         &Scheduler::Retry);
}

absl::StatusOr<conveyor::v1::BulkChainsResponse> ChainApi::ApplyToMatching(
    const conveyor::v1::ChainFilter& filter, bool dry_run, int32_t max_chains,
    ChainAction action) {
  if (max_chains < 0 || max_chains > kMaxBulkChains) {
    return InvalidField("max_chains", absl::StrCat("want 0..", kMaxBulkChains, " (0 = ",
                                                   kMaxBulkChains, "), got ", max_chains));
  }
  absl::StatusOr<ListQuery> query = ListQueryFromFilter(filter);
  if (!query.ok()) return query.status();
  const int64_t limit = max_chains == 0 ? kMaxBulkChains : max_chains;
  query->page_size = kBulkPageSize;
  conveyor::v1::BulkChainsResponse response;
  int64_t scanned = 0;
  while (scanned < kMaxBulkScan) {
    absl::StatusOr<ListPage> page = store_.List(*query);
    if (!page.ok()) return page.status();
    scanned += std::max<int64_t>(page->scanned, 1);
    for (size_t i = 0; i < page->chains.size(); ++i) {
      if (response.matched_count() == limit) {
        response.set_truncated(true);
        return response;
      }
      const Chain& listed = page->chains[i];
      response.set_matched_count(response.matched_count() + 1);
      absl::StatusOr<ActionOutcome> out =
          ApplyAction(ChainIdFromName(listed.name()), action, &*query, dry_run);
      if (out.ok() && out->changed) {
        response.set_changed_count(response.changed_count() + 1);
        if (response.changed_names_size() < kMaxBulkNames) {
          response.add_changed_names(listed.name());
        }
      } else if (out.ok() || out.status().code() == absl::StatusCode::kFailedPrecondition ||
                 out.status().code() == absl::StatusCode::kNotFound) {
        // The state does not allow the action, or the chain stopped matching
        // (or expired) since it was listed.
        response.set_skipped_count(response.skipped_count() + 1);
      } else if (out.status().code() == absl::StatusCode::kUnavailable) {
        return out.status();  // the store is gone: the rest would fail alike
      } else {
        response.set_failed_count(response.failed_count() + 1);
        if (response.failures_size() < kMaxBulkNames) {
          conveyor::v1::BulkChainFailure* f = response.add_failures();
          f->set_name(listed.name());
          *f->mutable_error() = ToRpcStatus(out.status());
        }
      }
    }
    if (page->next_page_token.empty()) return response;
    query->page_token = page->next_page_token;
  }
  response.set_truncated(true);
  return response;
}

absl::StatusOr<conveyor::v1::PurgeChainsResponse> ChainApi::Purge(
    const conveyor::v1::PurgeChainsRequest& request) {
  if (request.state() != conveyor::v1::STATE_UNSPECIFIED && !IsTerminal(request.state())) {
    return InvalidField("state", absl::StrCat("want SUCCEEDED, FAILED or CANCELLED, got ",
                                              conveyor::v1::State_Name(request.state())));
  }
  const absl::Duration older_than = FromProtoDuration(request.older_than());
  if (older_than < absl::ZeroDuration()) {
    return InvalidField("older_than", "must not be negative");
  }
  absl::StatusOr<PurgeOutcome> out =
      store_.Purge(request.state(), clock_.Now() - older_than, request.dry_run());
  if (!out.ok()) return out.status();
  conveyor::v1::PurgeChainsResponse response;
  response.set_purged_count(out->count);
  for (const std::string& n : out->sample_names) response.add_purged_names(n);
  return response;
}

absl::StatusOr<conveyor::v1::SystemStatus> ChainApi::SystemStatus() {
  conveyor::v1::SystemStatus status;
  // Health checks run in parallel, each bounded by health_timeout.
  std::vector<absl::Status> health(std::size(kStages));
  {
    std::vector<std::thread> checks;
    for (size_t i = 0; i < std::size(kStages); ++i) {
      checks.emplace_back(
          [&, i] { health[i] = stages_.CheckHealth(kStages[i], options_.health_timeout); });
    }
    for (std::thread& t : checks) t.join();
  }
  absl::StatusOr<absl::Duration> ping = store_.Ping();
  status.set_redis_reachable(ping.ok());
  if (ping.ok()) *status.mutable_redis_latency() = ToProtoDuration(*ping);
  absl::StatusOr<StoreStatus> stored =
      ping.ok() ? store_.Status(clock_.Now() - options_.lease_timeout)
                : absl::StatusOr<StoreStatus>(ping.status());
  for (size_t i = 0; i < std::size(kStages); ++i) {
    conveyor::v1::StageStatus* s = status.add_stages();
    s->set_kind(kStages[i]);
    s->set_target(stages_.Target(kStages[i]));
    s->set_max_in_flight(options_.max_in_flight);
    if (health[i].ok()) {
      s->set_health(conveyor::v1::StageStatus::SERVING);
    } else {
      s->set_health(conveyor::v1::StageStatus::NOT_SERVING);
      s->set_health_detail(std::string(health[i].message()));
    }
    if (stored.ok()) {
      auto it = stored->stages.find(std::string(StageName(kStages[i])));
      if (it != stored->stages.end()) {
        s->set_queued(it->second.queued);
        s->set_in_flight(it->second.in_flight);
        s->set_succeeded(it->second.succeeded);
        s->set_failed(it->second.failed);
        s->set_retried(it->second.retried);
      }
    }
  }
  if (stored.ok()) {
    for (const ReplicaInfo& r : stored->replicas) {
      conveyor::v1::ReplicaStatus* out = status.add_replicas();
      out->set_name(r.name);
      out->set_address(r.address);
      *out->mutable_heartbeat_time() = ToProtoTime(r.heartbeat);
      int64_t n = 0;
      for (const auto& [stage, k] : r.in_flight) n += k;
      out->set_in_flight(n);
    }
    for (const auto& [state, n] : stored->chains_by_state) {
      (*status.mutable_chains_by_state())[state] = n;
    }
  }
  return status;
}

}  // namespace conveyor::orchestrator
