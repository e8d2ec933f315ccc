#include "orchestrator/chain_api.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/rand.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/image_header.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/status_details.h"
#include "orchestrator/chain_filter.h"
#include "orchestrator/chain_validator.h"
#include "orchestrator/store_errors.h"

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

}  // namespace

absl::StatusOr<StoredChain> LoadForCaller(ChainRecords& store, const Caller& caller,
                                          const std::string& id) {
  absl::StatusOr<StoredChain> stored = store.Load(id);
  if (!stored.ok()) return PublicStoreError(stored.status());
  // In the store's own words for an unknown chain: nothing tells the two apart.
  if (!caller.Sees(stored->chain.tenant())) {
    return absl::NotFoundError(absl::StrCat("chains/", id, " not found"));
  }
  return stored;
}

void AuditLog(absl::string_view action, const Caller& caller, absl::string_view subject) {
  LogLine(LogLevel::kInfo)
      .Add("msg", "audit")
      .Add("action", action)
      .Add("principal", caller.principal)
      .Add("tenant", caller.tenant)
      .Add("subject", subject);
}

void MarkActor(const Caller& caller, Transition& t) {
  for (conveyor::v1::ChainEvent& e : t.effects.events) {
    e.mutable_actor()->set_principal(caller.principal);
    e.mutable_actor()->set_tenant(caller.tenant);
  }
}

absl::StatusOr<std::string> ChainApi::ParseChainName(const std::string& name) {
  if (name.size() > kMaxChainNameBytes) {
    return InvalidField("name", absl::StrCat("want chains/<32 hex digits>, got ", name.size(),
                                             " bytes (at most ", kMaxChainNameBytes, ")"));
  }
  std::string id = ChainIdFromName(name);
  // Exactly what NewChainId makes, so the message below is the whole rule.
  bool ok = id.size() == 32;
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

absl::StatusOr<Chain> ChainApi::Submit(const Caller& caller,
                                        const conveyor::v1::SubmitChainRequest& request) {
  if (caller.all_tenants() || !IsTenantName(caller.tenant)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "principal \"", caller.principal,
        "\" acts for no single tenant and so cannot own chains; submit with a tenant's "
        "credentials"));
  }
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
    t.chain.set_tenant(caller.tenant);
    t.chain.set_principal(caller.principal);
    MarkActor(caller, t);
    absl::StatusOr<SubmitOutcome> out = store_.Submit(t, hash, has_source ? &source : nullptr);
    if (out.ok()) {
      if (!out->existing) AuditLog("submit", caller, out->chain.name());
      return std::move(out->chain);
    }
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

absl::StatusOr<Chain> ChainApi::Get(const Caller& caller, const std::string& name) {
  absl::StatusOr<std::string> id = ParseChainName(name);
  if (!id.ok()) return id.status();
  absl::StatusOr<StoredChain> stored = LoadForCaller(store_, caller, *id);
  if (!stored.ok()) return stored.status();
  return std::move(stored->chain);
}

absl::StatusOr<conveyor::v1::ListChainsResponse> ChainApi::List(
    const Caller& caller, const conveyor::v1::ListChainsRequest& request) {
  if (request.page_token().size() > kMaxPageTokenBytes) {
    return InvalidField("page_token",
                        absl::StrCat(request.page_token().size(), " bytes is over the limit of ",
                                     kMaxPageTokenBytes, " bytes; pass next_page_token as given"));
  }
  absl::StatusOr<ListQuery> q = ListQueryFromRequest(request);
  if (!q.ok()) return q.status();
  q->max_page_bytes = options_.max_list_response_bytes;
  q->tenant = caller.scope_tenant();
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

absl::StatusOr<ChainApi::ActionOutcome> ChainApi::ApplyAction(const Caller& caller,
                                                             const std::string& id,
                                                             ChainAction action,
                                                             const ListQuery* must_match,
                                                             bool dry_run) {
  for (int round = 0; round < 5; ++round) {
    absl::StatusOr<StoredChain> stored = LoadForCaller(store_, caller, id);
    if (!stored.ok()) return stored.status();
    if (must_match != nullptr && !ChainMatches(*must_match, stored->chain)) {
      return ActionOutcome{std::move(stored->chain), false, false};
    }
    absl::StatusOr<PlannedAction> plan = (this->*action)(stored->chain);
    if (!plan.ok()) return plan.status();
    Transition& t = plan->transition;
    if (!t.changed || dry_run) return ActionOutcome{std::move(t.chain), t.changed, true};
    MarkActor(caller, t);
    absl::Status applied = store_.Apply(stored->chain.version(), t, plan->extras);
    if (applied.ok()) return ActionOutcome{std::move(t.chain), true, true};
    // Another writer got there first, or a blob the retry needs was freed
    // meanwhile: look again.
    if (!IsStaleVersion(applied) && !IsBlobGone(applied)) return PublicStoreError(applied);
  }
  return absl::AbortedError("the chain kept changing; try again");
}

absl::StatusOr<Chain> ChainApi::Cancel(const Caller& caller, const std::string& name) {
  absl::StatusOr<std::string> id = ParseChainName(name);
  if (!id.ok()) return id.status();
  absl::StatusOr<ActionOutcome> out =
      ApplyAction(caller, *id, &ChainApi::PlanCancel, nullptr, false);
  if (!out.ok()) return out.status();
  if (out->changed) AuditLog("cancel", caller, out->chain.name());
  return std::move(out->chain);
}

absl::StatusOr<Chain> ChainApi::Retry(const Caller& caller, const std::string& name) {
  absl::StatusOr<std::string> id = ParseChainName(name);
  if (!id.ok()) return id.status();
  absl::StatusOr<ActionOutcome> out =
      ApplyAction(caller, *id, &ChainApi::PlanRetry, nullptr, false);
  if (!out.ok()) return out.status();
  if (out->changed) AuditLog("retry", caller, out->chain.name());
  return std::move(out->chain);
}

absl::StatusOr<conveyor::v1::PurgeChainsResponse> ChainApi::Purge(
    const Caller& caller, const conveyor::v1::PurgeChainsRequest& request) {
  if (request.state() != conveyor::v1::STATE_UNSPECIFIED && !IsTerminal(request.state())) {
    return InvalidField("state", absl::StrCat("want SUCCEEDED, FAILED or CANCELLED, got ",
                                              conveyor::v1::State_Name(request.state())));
  }
  const absl::Duration older_than = FromProtoDuration(request.older_than());
  if (older_than < absl::ZeroDuration()) {
    return InvalidField("older_than", "must not be negative");
  }
  absl::StatusOr<PurgeOutcome> out = store_.Purge(request.state(), clock_.Now() - older_than,
                                                  caller.scope_tenant(), request.dry_run());
  if (!out.ok()) return PublicStoreError(out.status());
  if (!request.dry_run()) {
    AuditLog("purge", caller, absl::StrCat(out->count, " chains"));
  }
  conveyor::v1::PurgeChainsResponse response;
  response.set_purged_count(out->count);
  for (const std::string& n : out->sample_names) response.add_purged_names(n);
  return response;
}

}  // namespace conveyor::orchestrator
