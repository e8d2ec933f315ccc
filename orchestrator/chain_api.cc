#include "orchestrator/chain_api.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/rand.h>

#include <algorithm>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "orchestrator/chain_filter.h"
#include "orchestrator/chain_validator.h"
#include "orchestrator/redis/redis_keys.h"
#include "common/stage_registry.h"
#include "common/image_header.h"
#include "common/sha256.h"
#include "common/log.h"
#include "common/status_details.h"

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
  Sha256 hash;
  hash.Update(serialized);
  hash.Update(source);
  return hash.FinishHex();
}

// The word a Redis error reply starts with ("OOM", "WRONGTYPE", "ERR"), or ""
// if `message` does not look like one. RedisConnection (StatusFromRedisError)
// turns error replies into INTERNAL(<reply text>), or, for transient and
// out-of-memory replies, UNAVAILABLE / RESOURCE_EXHAUSTED("redis: <reply
// text>"); our own messages never start so.
std::string RedisErrorWord(const absl::Status& status) {
  absl::string_view m = status.message();
  if (status.code() == absl::StatusCode::kUnavailable ||
      status.code() == absl::StatusCode::kResourceExhausted) {
    if (!absl::ConsumePrefix(&m, "redis: ")) return "";
  } else if (status.code() != absl::StatusCode::kInternal) {
    return "";
  }
  const size_t end = std::min(m.find(' '), m.size());
  if (end < 2 || end > 16) return "";
  for (char c : m.substr(0, end)) {
    if (!absl::ascii_isupper(static_cast<unsigned char>(c))) return "";
  }
  return std::string(m.substr(0, end));
}

// Steps whose worker call carries an input image.
bool NeedsImage(const conveyor::v1::Step& step) {
  return step.has_resize() || step.has_filter() || step.has_upload();
}

std::string StepName(const conveyor::v1::ChainSpec& spec, int step) {
  return absl::StrCat("step ", step, " (", StageName(StepKind(spec.steps(step))), ")");
}

// Turns Scheduler::Retry's resume at its first unfinished step into a resume
// at `from` (< that step): steps from..first-1 had succeeded but one of their
// outputs that a later step needs was freed, so they run again.
void ResumeEarlier(Transition& t, int from, const std::string& note) {
  Chain& c = t.chain;
  const int first = t.effects.enqueue_step;
  for (int i = from; i < first; ++i) {
    conveyor::v1::StepStatus* s = c.mutable_steps(i);
    s->set_state(conveyor::v1::PENDING);
    s->set_attempts(0);
    s->set_deferrals(0);
    s->clear_error();
    s->clear_end_time();
    s->clear_start_time();
    s->clear_next_attempt_time();
    s->clear_worker();
    s->clear_output();
    s->clear_duration();
  }
  // Results are the stored objects of succeeded uploads, in step order.
  c.clear_results();
  int done = 0;
  for (const conveyor::v1::StepStatus& s : c.steps()) {
    if (s.state() != conveyor::v1::SUCCEEDED) continue;
    ++done;
    if (s.output().has_stored_object()) *c.add_results() = s.output().stored_object();
  }
  c.set_progress_percent(c.steps_size() == 0 ? 0 : done * 100 / c.steps_size());
  c.set_resume_note(note);
  t.effects.enqueue_step = from;
  t.effects.counters = {{absl::StrCat(StageName(c.steps(from).kind()), ".queued"), 1}};
  for (conveyor::v1::ChainEvent& e : t.effects.events) {
    if (e.type() != conveyor::v1::ChainEvent::CHAIN_RESUMED) continue;
    e.set_step_index(from);
    e.set_progress_percent(c.progress_percent());
  }
}


}  // namespace

absl::StatusOr<std::string> ChainApi::ParseChainName(const std::string& name) {
  if (name.size() > kMaxChainNameBytes) {
    return InvalidField("name", absl::StrCat("want chains/<32 hex digits>, got ", name.size(),
                                             " bytes (at most ", kMaxChainNameBytes, ")"));
  }
  std::string id = ChainIdFromName(name);
  bool ok = !id.empty() && id.size() <= 64;
  for (char c : id) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!ok) {
    return InvalidField("name",
                        absl::StrCat("want chains/<32 hex digits>, got \"", Preview(name), "\""));
  }
  return id;
}

absl::StatusOr<std::string> ChainApi::ParseWatchRequest(
    const conveyor::v1::WatchChainRequest& request) {
  absl::StatusOr<std::string> id = ParseChainName(request.name());
  if (!id.ok()) return id.status();
  const std::string& after = request.after_event_id();
  // Event ids are the store's opaque cursors: the store checks their form
  // (ChainRecords::Events); here only their size and that they are one
  // printable word, before anything logs or passes them on.
  if (after.size() > kMaxEventIdBytes) {
    return InvalidField("after_event_id",
                        absl::StrCat("want a ChainEvent.event_id, got ", after.size(),
                                     " bytes (at most ", kMaxEventIdBytes, ")"));
  }
  for (char c : after) {
    if (c < 0x21 || c > 0x7e) {
      return InvalidField("after_event_id",
                          absl::StrCat("want a ChainEvent.event_id, got \"", Preview(after),
                                       "\""));
    }
  }
  return id;
}

absl::Status ChainApi::PublicStoreError(const absl::Status& status) {
  const std::string word = RedisErrorWord(status);
  if (word.empty()) return status;
  // The raw reply can name keys and script lines: log it, do not return it.
  LogLine(LogLevel::kWarning).Add("msg", "redis error reply").Add("redis_error", status.message());
  if (word == "OOM") {
    return WithErrorReason(
        absl::ResourceExhaustedError(
            "Redis is out of memory (maxmemory reached) and refuses writes; nothing was "
            "written. Retry later, or free space with PurgeChains"),
        "STORE_OUT_OF_MEMORY");
  }
  static constexpr absl::string_view kTransient[] = {"LOADING",    "BUSY",     "READONLY",
                                                     "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                                                     "NOREPLICAS", "MISCONF"};
  for (absl::string_view w : kTransient) {
    if (word == w) {
      return absl::UnavailableError(
          absl::StrCat("Redis cannot serve this right now (", word, "); retry later"));
    }
  }
  return absl::InternalError(
      absl::StrCat("the chain store failed (Redis ", word, "); see the orchestrator log"));
}

absl::StatusOr<Chain> ChainApi::Submit(const Caller& /*caller*/,
                                        const conveyor::v1::SubmitChainRequest& request) {
  const std::string& source = request.source().data();
  const bool has_source = !source.empty();
  if (absl::Status s = ValidateIdempotencyKey(request.idempotency_key()); !s.ok()) return s;
  // Unknown fields would be stored and served with every read of the chain;
  // drop them (a newer client's fields mean nothing to this server).
  conveyor::v1::ChainSpec spec = request.spec();
  spec.DiscardUnknownFields();
  if (absl::Status s = ValidateChainSpec(spec, has_source); !s.ok()) return s;
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
  const std::string hash = SpecHash(spec, source);
  for (int round = 0;; ++round) {
    Transition t = scheduler_.Submit(spec, NewChainId(), request.idempotency_key(), info);
    absl::StatusOr<SubmitOutcome> out = store_.Submit(t, hash, has_source ? &source : nullptr);
    if (out.ok()) return std::move(out->chain);
    // A taken id (two random 128-bit ids collided) is ours to fix: new id.
    if (ErrorReason(out.status()) == "CHAIN_EXISTS" && round < 3) continue;
    if (ErrorReason(out.status()) == "BLOB_STORE_FULL" && round == 0) {
      // Images past their retention may still be held: free them and look
      // again once, so the cap counts only what must be kept.
      absl::StatusOr<int> freed = store_.FreeExpiredBlobs(clock_.Now(), 1000);
      if (freed.ok() && *freed > 0) continue;
    }
    if (ErrorReason(out.status()) == "CHAIN_EXISTS") {
      return absl::AbortedError("could not pick an unused chain id; try again");
    }
    return PublicStoreError(out.status());
  }
}

absl::StatusOr<Chain> ChainApi::Get(const Caller& /*caller*/, const std::string& name) {
  absl::StatusOr<std::string> id = ParseChainName(name);
  if (!id.ok()) return id.status();
  absl::StatusOr<StoredChain> stored = store_.Load(*id);
  if (!stored.ok()) return PublicStoreError(stored.status());
  return std::move(stored->chain);
}

absl::StatusOr<conveyor::v1::ListChainsResponse> ChainApi::List(
    const Caller& /*caller*/, const conveyor::v1::ListChainsRequest& request) {
  if (request.page_token().size() > kMaxPageTokenBytes) {
    return InvalidField("page_token",
                        absl::StrCat(request.page_token().size(), " bytes is over the limit of ",
                                     kMaxPageTokenBytes, " bytes; pass next_page_token as given"));
  }
  absl::StatusOr<ListQuery> q = ListQueryFromRequest(request);
  if (!q.ok()) return q.status();
  q->max_page_bytes = options_.max_list_response_bytes;
  absl::StatusOr<ListPage> page = store_.List(*q);
  if (!page.ok()) return PublicStoreError(page.status());
  conveyor::v1::ListChainsResponse response;
  for (Chain& c : page->chains) *response.add_chains() = std::move(c);
  response.set_next_page_token(page->next_page_token);
  return response;
}

absl::StatusOr<ChainApi::PlannedAction> ChainApi::PlanCancel(const Chain& chain) const {
  absl::StatusOr<Transition> t = scheduler_.Cancel(chain);
  if (!t.ok()) return t.status();
  return PlannedAction{*std::move(t), {}};
}

absl::StatusOr<ChainApi::PlannedAction> ChainApi::PlanRetry(const Chain& chain) const {
  absl::StatusOr<Transition> t = scheduler_.Retry(chain);
  if (!t.ok()) return t.status();
  t->chain.clear_resume_note();
  const std::string id = ChainIdFromName(chain.name());
  // The images this resume needs may have been freed (FAILED/CANCELLED
  // chains keep them for --failed-blob-retention only). Resume from the
  // earliest step whose input is still there; the required blobs are
  // re-checked atomically with the resume (ApplyExtras::required_blobs).
  absl::StatusOr<std::vector<int>> missing_list = store_.MissingBlobs(id, BlobIndexes(chain));
  if (!missing_list.ok()) return PublicStoreError(missing_list.status());
  const std::set<int> missing(missing_list->begin(), missing_list->end());
  const conveyor::v1::ChainSpec& spec = chain.spec();
  const int first = t->effects.enqueue_step;
  int from = first;
  std::string gone_text;
  for (bool moved = true; moved;) {
    moved = false;
    for (int s = from; s < spec.steps_size() && !moved; ++s) {
      if (!NeedsImage(spec.steps(s))) continue;
      // Blob b = output of step b-1, re-made if that step runs again.
      const int b = InputBlobIndex(spec, s);
      if (b > from || missing.count(b) == 0) continue;
      if (b == 0) {
        return WithErrorReason(
            absl::FailedPreconditionError(absl::StrCat(
                chain.name(), " cannot be retried: its inline source image, the input of ",
                StepName(spec, s), ", was freed ",
                absl::FormatDuration(options_.failed_blob_retention),
                " after the chain ended (--failed-blob-retention) and nothing can recreate "
                "it; submit the chain again with the source")),
            "SOURCE_FREED", {{"step", std::to_string(s)}});
      }
      if (gone_text.empty()) {
        gone_text = absl::StrCat("the output of ", StepName(spec, b - 1), ", input of ",
                                 StepName(spec, s),
                                 ", was freed after the chain ended "
                                 "(--failed-blob-retention)");
      }
      from = b - 1;
      moved = true;
    }
  }
  PlannedAction plan{*std::move(t), {}};
  ApplyExtras& extras = plan.extras;
  for (int s = from; s < spec.steps_size(); ++s) {
    const int b = InputBlobIndex(spec, s);
    if (NeedsImage(spec.steps(s)) && b <= from) extras.required_blobs.push_back(b);
  }
  std::sort(extras.required_blobs.begin(), extras.required_blobs.end());
  extras.required_blobs.erase(
      std::unique(extras.required_blobs.begin(), extras.required_blobs.end()),
      extras.required_blobs.end());
  if (from < first) {
    ResumeEarlier(plan.transition, from,
                  absl::StrCat("resumed from ", StepName(spec, from), ", not ",
                               StepName(spec, first), ": ", gone_text));
    LogLine(LogLevel::kInfo)
        .Add("msg", "retry resumes earlier")
        .Add("chain", chain.name())
        .Add("from_step", from)
        .Add("first_unfinished", first);
  }
  return plan;
}

absl::StatusOr<ChainApi::ActionOutcome> ChainApi::ApplyAction(const std::string& id,
                                                             ChainAction action,
                                                             const ListQuery* must_match,
                                                             bool dry_run) {
  for (int round = 0; round < 5; ++round) {
    absl::StatusOr<StoredChain> stored = store_.Load(id);
    if (!stored.ok()) return PublicStoreError(stored.status());
    if (must_match != nullptr && !ChainMatches(*must_match, stored->chain)) {
      return ActionOutcome{std::move(stored->chain), false, false};
    }
    absl::StatusOr<PlannedAction> plan = (this->*action)(stored->chain);
    if (!plan.ok()) return plan.status();
    Transition& t = plan->transition;
    if (!t.changed || dry_run) return ActionOutcome{std::move(t.chain), t.changed, true};
    absl::Status applied = store_.Apply(stored->chain.version(), t, plan->extras);
    if (applied.ok()) return ActionOutcome{std::move(t.chain), true, true};
    // Another writer got there first, or a blob the retry needs was freed
    // meanwhile: look again.
    if (!IsStaleVersion(applied) && !IsBlobGone(applied)) return PublicStoreError(applied);
  }
  return absl::AbortedError("the chain kept changing; try again");
}

absl::StatusOr<Chain> ChainApi::Cancel(const Caller& /*caller*/, const std::string& name) {
  absl::StatusOr<std::string> id = ParseChainName(name);
  if (!id.ok()) return id.status();
  absl::StatusOr<ActionOutcome> out = ApplyAction(*id, &ChainApi::PlanCancel, nullptr, false);
  if (!out.ok()) return out.status();
  return std::move(out->chain);
}

absl::StatusOr<Chain> ChainApi::Retry(const Caller& /*caller*/, const std::string& name) {
  absl::StatusOr<std::string> id = ParseChainName(name);
  if (!id.ok()) return id.status();
  absl::StatusOr<ActionOutcome> out = ApplyAction(*id, &ChainApi::PlanRetry, nullptr, false);
  if (!out.ok()) return out.status();
  return std::move(out->chain);
}

absl::StatusOr<conveyor::v1::BulkChainsResponse> ChainApi::CancelMany(
    const Caller& /*caller*/, const conveyor::v1::CancelChainsRequest& request) {
  return ApplyToMatching(request.filter(), request.dry_run(), request.max_chains(),
                         &ChainApi::PlanCancel);
}

absl::StatusOr<conveyor::v1::BulkChainsResponse> ChainApi::RetryMany(
    const Caller& /*caller*/, const conveyor::v1::RetryChainsRequest& request) {
  return ApplyToMatching(request.filter(), request.dry_run(), request.max_chains(),
                         &ChainApi::PlanRetry);
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
    const Caller& /*caller*/, const conveyor::v1::PurgeChainsRequest& request) {
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
  if (!out.ok()) return PublicStoreError(out.status());
  conveyor::v1::PurgeChainsResponse response;
  response.set_purged_count(out->count);
  for (const std::string& n : out->sample_names) response.add_purged_names(n);
  return response;
}

absl::StatusOr<conveyor::v1::SystemStatus> ChainApi::SystemStatus(const Caller& /*caller*/) {
  conveyor::v1::SystemStatus status;
  // Health checks run in parallel, each bounded by health_timeout.
  const absl::Span<const StageInfo> stages = Stages();
  std::vector<StageHealth> health(stages.size());
  {
    std::vector<std::thread> checks;
    for (size_t i = 0; i < stages.size(); ++i) {
      checks.emplace_back(
          [&, i] { health[i] = stages_.CheckHealth(stages[i].kind, options_.health_timeout); });
    }
    for (std::thread& t : checks) t.join();
  }
  absl::StatusOr<absl::Duration> ping = store_.Ping();
  status.set_redis_reachable(ping.ok());
  if (ping.ok()) *status.mutable_redis_latency() = ToProtoDuration(*ping);
  absl::StatusOr<StoreStatus> stored =
      ping.ok() ? store_.Status(clock_.Now() - options_.lease_timeout)
                : absl::StatusOr<StoreStatus>(ping.status());
  for (size_t i = 0; i < stages.size(); ++i) {
    conveyor::v1::StageStatus* s = status.add_stages();
    s->set_kind(stages[i].kind);
    s->set_target(stages_.Target(stages[i].kind));
    s->set_max_in_flight(options_.max_in_flight);
    switch (health[i].state) {
      case StageHealth::State::kServing:
        s->set_health(conveyor::v1::StageStatus::SERVING);
        break;
      case StageHealth::State::kNotServing:
        s->set_health(conveyor::v1::StageStatus::NOT_SERVING);
        break;
      case StageHealth::State::kUnreachable:
        s->set_health(conveyor::v1::StageStatus::UNREACHABLE);
        break;
      case StageHealth::State::kWrongService:
        s->set_health(conveyor::v1::StageStatus::WRONG_SERVICE);
        break;
    }
    s->set_health_detail(health[i].detail);
    if (stored.ok()) {
      auto it = stored->stages.find(std::string(stages[i].name));
      if (it != stored->stages.end()) {
        s->set_queued(it->second.queued);
        s->set_in_flight(it->second.in_flight);
        s->set_waiting(it->second.waiting);
        s->set_succeeded(it->second.succeeded);
        s->set_failed(it->second.failed);
        s->set_retried(it->second.retried);
      }
    }
  }
  status.set_max_blob_bytes(options_.max_blob_bytes);
  status.set_redis_used_memory_bytes(-1);
  status.set_redis_max_memory_bytes(-1);
  if (stored.ok()) {
    status.set_blob_bytes(std::max<int64_t>(0, stored->blob_bytes));
    status.set_redis_used_memory_bytes(stored->redis_used_memory);
    status.set_redis_max_memory_bytes(stored->redis_max_memory);
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
