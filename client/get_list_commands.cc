// `conveyor get` and `conveyor list`: reading chains.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/chain_filter_flags.h"
#include "client/chain_format.h"
#include "client/cli_io.h"
#include "client/commands.h"
#include "client/session.h"

namespace conveyor::client {

using conveyor::v1::Orchestrator;

int RunGet(const GlobalOptions& global, const std::string& name) {
  return WithSession(global, [&](Session& session) {
    conveyor::v1::GetChainRequest request;
    request.set_name(name);
    conveyor::v1::Chain chain;
    if (grpc::Status status = session.Call(&Orchestrator::Stub::GetChain, request, &chain);
        !status.ok()) {
      return RpcError(status, session.token_source());
    }
    PrintResult(global, chain, FormatChain(chain, absl::Now()));
    return kExitOk;
  });
}

int RunList(const GlobalOptions& global, const ListOptions& options) {
  return WithSession(global, [&](Session& session) {
    conveyor::v1::ListChainsRequest request;
    const absl::Time now = absl::Now();
    absl::StatusOr<conveyor::v1::ChainFilter> filter = BuildChainFilter(options.filter, now);
    if (!filter.ok()) return UsageError(filter.status());
    ApplyToListRequest(*filter, request);
    if (options.limit < 0 || options.limit > 1000) {
      return UsageError(
          absl::InvalidArgumentError(absl::StrCat("--limit: want 1..1000, got ", options.limit)));
    }
    request.set_page_size(options.limit);
    request.set_page_token(options.page_token);
    conveyor::v1::ListChainsResponse response;
    if (grpc::Status status = session.Call(&Orchestrator::Stub::ListChains, request, &response);
        !status.ok()) {
      return RpcError(status, session.token_source());
    }
    PrintResult(global, response, FormatChainList(response, now));
    return kExitOk;
  });
}

}  // namespace conveyor::client
