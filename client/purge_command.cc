// `conveyor purge`: deletes finished chains, after a count and a
// confirmation unless --yes.
#include <iostream>

#include "client/chain_format.h"
#include "client/cli_io.h"
#include "client/commands.h"
#include "client/flag_values.h"
#include "client/session.h"
#include "common/proto_time.h"

namespace conveyor::client {

using conveyor::v1::Orchestrator;
using conveyor::v1::PurgeChainsResponse;

int RunPurge(const GlobalOptions& global, const PurgeOptions& options) {
  return WithSession(global, [&](Session& session) {
    conveyor::v1::PurgeChainsRequest request;
    if (!options.state.empty()) {
      absl::StatusOr<conveyor::v1::State> state =
          ParseStateFlag("--state", options.state,
                         {conveyor::v1::SUCCEEDED, conveyor::v1::FAILED, conveyor::v1::CANCELLED});
      if (!state.ok()) return UsageError(state.status());
      request.set_state(*state);
    }
    if (!options.older_than.empty()) {
      absl::StatusOr<absl::Duration> age = ParseDurationFlag("--older-than", options.older_than);
      if (!age.ok()) return UsageError(age.status());
      *request.mutable_older_than() = ToProtoDuration(*age);
    }
    if (!options.dry_run && !options.yes) {
      // Count first, then ask: deleting is not undoable.
      request.set_dry_run(true);
      PurgeChainsResponse preview;
      if (grpc::Status status = session.Call(&Orchestrator::Stub::PurgeChains, request, &preview);
          !status.ok()) {
        return RpcError(status, session.token_source());
      }
      if (preview.purged_count() == 0) {
        PrintResult(global, preview, "No chains to purge.\n");
        return kExitOk;
      }
      if (int code = Confirm("purge", preview.purged_count()); code != kExitOk) return code;
    }
    request.set_dry_run(options.dry_run);
    PurgeChainsResponse response;
    if (grpc::Status status = session.Call(&Orchestrator::Stub::PurgeChains, request, &response);
        !status.ok()) {
      return RpcError(status, session.token_source());
    }
    PrintResult(global, response, FormatPurge(response, options.dry_run));
    return kExitOk;
  });
}

}  // namespace conveyor::client
