// `conveyor watch`.
#include <iostream>

#include "absl/time/clock.h"
#include "client/cli_io.h"
#include "client/commands.h"
#include "client/follow.h"
#include "client/format.h"
#include "client/watch_view.h"

namespace conveyor::client {

int RunWatch(const GlobalOptions& global, const WatchOptions& options) {
  return WithSession(global, [&](Session& session) {
    absl::StatusOr<absl::Duration> max_wait = OptionalDuration("--max-wait", options.max_wait);
    if (!max_wait.ok()) return UsageError(max_wait.status());

    // The spec names the steps in the progress lines; NOT_FOUND surfaces here.
    // A Redis restart in progress (UNAVAILABLE) is waited out like mid-watch.
    conveyor::v1::Chain chain;
    const absl::Time deadline =
        *max_wait == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + *max_wait;
    if (grpc::Status status = GetChainRetrying(session, options.chain, deadline, &chain);
        !status.ok()) {
      return RpcError(status, session.token_source());
    }
    WatchView view(KindsOf(chain.spec()), !global.json && StdoutIsTerminal());
    FollowResult result =
        Follow(session, chain.name(), *max_wait, [&](const conveyor::v1::ChainEvent& event) {
          // --json: one JSON object per line, for `jq -c` and friends.
          std::cout << (global.json ? ToJson(event, false) + "\n" : view.OnEvent(event))
                    << std::flush;
        });
    std::cout << view.Finish() << std::flush;
    if (!result.status.ok()) return RpcError(result.status, session.token_source());
    if (!global.json) {
      std::cout << chain.name() << " " << StateName(result.state);
      if (result.error.code() != 0) std::cout << ": " << FormatRpcStatus(result.error);
      std::cout << "\n";
    }
    return result.state == conveyor::v1::SUCCEEDED ? kExitOk : kExitChainFailed;
  });
}

}  // namespace conveyor::client
