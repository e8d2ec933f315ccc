// `conveyor status`.
#include "absl/time/clock.h"
#include "client/chain_format.h"
#include "client/cli_io.h"
#include "client/commands.h"
#include "client/session.h"

namespace conveyor::client {

// `status`: a stage not SERVING, or Redis unreachable.
constexpr int kExitStatusUnhealthy = 1;

int RunStatus(const GlobalOptions& global) {
  return WithSession(global, [&](Session& session) {
    conveyor::v1::SystemStatus status;
    if (grpc::Status rpc = session.Call(&conveyor::v1::Orchestrator::Stub::GetSystemStatus,
                                        conveyor::v1::GetSystemStatusRequest(), &status);
        !rpc.ok()) {
      return RpcError(rpc, session.token_source());
    }
    PrintResult(global, status, FormatSystemStatus(status, absl::Now()));
    // Non-zero when anything is not healthy, so scripts and probes can use
    // `conveyor status` as a check (docs/cli.md, status).
    return SystemHealthy(status) ? kExitOk : kExitStatusUnhealthy;
  });
}

}  // namespace conveyor::client
