// `conveyor cancel` and `conveyor retry`: one chain by name, or every chain
// matching a filter (a dry run first, then a confirmation).
#include <functional>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/chain_filter_flags.h"
#include "client/chain_format.h"
#include "client/cli_io.h"
#include "client/commands.h"
#include "client/follow.h"
#include "client/session.h"

namespace conveyor::client {
namespace {

using conveyor::v1::BulkChainsResponse;
using conveyor::v1::Chain;
using conveyor::v1::Orchestrator;

// retry / cancel by filter: preview (dry run), confirm, apply.
template <typename Request>
int RunBulk(Session& session, const GlobalOptions& global, const BulkOptions& options,
            absl::string_view verb,
            grpc::Status (Orchestrator::Stub::*call)(grpc::ClientContext*, const Request&,
                                                     BulkChainsResponse*)) {
  if (options.max_chains < 0) {
    return UsageError(absl::InvalidArgumentError(
        absl::StrCat("--max: want 1..10000 (0 = the server's cap), got ", options.max_chains)));
  }
  absl::StatusOr<conveyor::v1::ChainFilter> filter = BuildChainFilter(options.filter, absl::Now());
  if (!filter.ok()) return UsageError(filter.status());
  Request request;
  *request.mutable_filter() = *filter;
  request.set_max_chains(options.max_chains);
  request.set_dry_run(true);
  BulkChainsResponse preview;
  if (grpc::Status status = session.Call(call, request, &preview); !status.ok()) {
    return RpcError(status, session.token_source());
  }
  if (options.dry_run || preview.changed_count() == 0) {
    // Nothing to change: nothing to ask.
    PrintResult(global, preview, FormatBulkResult(preview, verb, options.dry_run));
    return kExitOk;
  }
  if (!options.yes) {
    if (int code = Confirm(verb, preview.changed_count()); code != kExitOk) return code;
  }
  // No more than the preview examined: what was confirmed, give or take the
  // chains that changed in between.
  request.set_dry_run(false);
  request.set_max_chains(static_cast<int32_t>(preview.matched_count()));
  BulkChainsResponse response;
  if (grpc::Status status = session.Call(call, request, &response); !status.ok()) {
    return RpcError(status, session.token_source());
  }
  PrintResult(global, response, FormatBulkResult(response, verb, false));
  return response.failed_count() == 0 ? kExitOk : kExitChainFailed;
}

// NAME or a filter, not both, not neither.
absl::Status CheckBulkTarget(const BulkOptions& options) {
  const bool has_filter = !FilterFlagsEmpty(options.filter);
  if (!options.chain.empty() && has_filter) {
    return absl::InvalidArgumentError(
        "give either a chain name or filter flags (--state, --label, ...), not both");
  }
  if (options.chain.empty() && !has_filter) {
    return absl::InvalidArgumentError(
        "give a chain name, or at least one filter flag (--state, --label, --stage, "
        "--error-reason, --since, ...)");
  }
  if (!options.chain.empty() && (options.dry_run || options.max_chains != 0)) {
    return absl::InvalidArgumentError("--dry-run and --max apply to a filter, not to a chain name");
  }
  if (options.chain.empty() && options.wait) {
    return absl::InvalidArgumentError("--wait follows one chain: give its name");
  }
  return absl::OkStatus();
}

// One chain by name (`one`, then `then` on the chain it returns), or every
// chain matching the filter (RunBulk with `bulk`).
template <typename BulkRequest, typename OneRequest>
int RunOneOrMatching(
    const GlobalOptions& global, const BulkOptions& options, absl::string_view verb,
    grpc::Status (Orchestrator::Stub::*bulk)(grpc::ClientContext*, const BulkRequest&,
                                             BulkChainsResponse*),
    grpc::Status (Orchestrator::Stub::*one)(grpc::ClientContext*, const OneRequest&, Chain*),
    const std::function<int(Session&, const Chain&)>& then) {
  return WithSession(global, [&](Session& session) {
    if (options.chain.empty()) return RunBulk(session, global, options, verb, bulk);
    OneRequest request;
    request.set_name(options.chain);
    Chain chain;
    if (grpc::Status status = session.Call(one, request, &chain); !status.ok()) {
      return RpcError(status, session.token_source());
    }
    return then(session, chain);
  });
}

}  // namespace

int RunCancel(const GlobalOptions& global, const BulkOptions& options) {
  if (absl::Status s = CheckBulkTarget(options); !s.ok()) return UsageError(s);
  return RunOneOrMatching(global, options, "cancel", &Orchestrator::Stub::CancelChains,
                          &Orchestrator::Stub::CancelChain, [&](Session&, const Chain& chain) {
                            PrintChainState(global, chain);
                            return kExitOk;
                          });
}

int RunRetry(const GlobalOptions& global, const BulkOptions& options) {
  if (absl::Status s = CheckBulkTarget(options); !s.ok()) return UsageError(s);
  // --max-wait only matters to `retry NAME --wait`.
  absl::StatusOr<absl::Duration> max_wait = absl::InfiniteDuration();
  if (!options.chain.empty()) max_wait = OptionalDuration("--max-wait", options.max_wait);
  if (!max_wait.ok()) return UsageError(max_wait.status());
  return RunOneOrMatching(global, options, "retry", &Orchestrator::Stub::RetryChains,
                          &Orchestrator::Stub::RetryChain,
                          [&](Session& session, const Chain& chain) {
                            if (!options.wait) {
                              PrintChainState(global, chain);
                              return kExitOk;
                            }
                            return FollowAndReport(session, global, chain, *max_wait);
                          });
}

}  // namespace conveyor::client
