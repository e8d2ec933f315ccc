// CancelChains / RetryChains: one action over every chain a filter matches,
// through the same per-chain compare-and-set as CancelChain / RetryChain.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_details.h"
#include "orchestrator/chain_api.h"
#include "orchestrator/chain_filter.h"
#include "orchestrator/store_errors.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;

absl::StatusOr<conveyor::v1::BulkChainsResponse> ChainApi::CancelMany(
    const Caller& caller, const conveyor::v1::CancelChainsRequest& request) {
  return ApplyToMatching(caller, request.filter(), request.dry_run(), request.max_chains(),
                         &ChainApi::PlanCancel, "cancel-many");
}

absl::StatusOr<conveyor::v1::BulkChainsResponse> ChainApi::RetryMany(
    const Caller& caller, const conveyor::v1::RetryChainsRequest& request) {
  return ApplyToMatching(caller, request.filter(), request.dry_run(), request.max_chains(),
                         &ChainApi::PlanRetry, "retry-many");
}

absl::StatusOr<conveyor::v1::BulkChainsResponse> ChainApi::ApplyToMatching(
    const Caller& caller, const conveyor::v1::ChainFilter& filter, bool dry_run,
    int32_t max_chains, ChainAction action, absl::string_view audit_action) {
  absl::StatusOr<conveyor::v1::BulkChainsResponse> response =
      ApplyToEachMatching(caller, filter, dry_run, max_chains, action);
  if (response.ok() && !dry_run) {
    AuditLog(audit_action, caller, absl::StrCat(response->changed_count(), " chains"));
  }
  return response;
}

absl::StatusOr<conveyor::v1::BulkChainsResponse> ChainApi::ApplyToEachMatching(
    const Caller& caller, const conveyor::v1::ChainFilter& filter, bool dry_run,
    int32_t max_chains, ChainAction action) {
  if (max_chains < 0 || max_chains > kMaxBulkChains) {
    return InvalidField("max_chains", absl::StrCat("want 0..", kMaxBulkChains, " (0 = ",
                                                   kMaxBulkChains, "), got ", max_chains));
  }
  absl::StatusOr<ListQuery> query = ListQueryFromFilter(filter);
  if (!query.ok()) return query.status();
  query->tenant = caller.scope_tenant();
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
          ApplyAction(caller, ChainIdFromName(listed.name()), action, &*query, dry_run);
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

}  // namespace conveyor::orchestrator
