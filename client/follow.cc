#include "client/follow.h"

#include <algorithm>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/format.h"
#include "client/watch_view.h"
#include "common/proto_time.h"
#include "common/stage_registry.h"

namespace conveyor::client {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;
using conveyor::v1::StageKind;

// After a followed chain ends: its results or its error, for people.
std::string FinalSummary(const Chain& chain) {
  std::string out = absl::StrCat(chain.name(), " ", StateName(chain.state()));
  if (chain.has_end_time() && chain.has_create_time()) {
    absl::StrAppend(
        &out, " in ",
        ShortDuration(FromProtoTime(chain.end_time()) - FromProtoTime(chain.create_time())));
  }
  if (chain.has_error()) absl::StrAppend(&out, ": ", FormatRpcStatus(chain.error()));
  out += "\n";
  for (const auto& result : chain.results()) {
    absl::StrAppend(&out, "  ", result.uri(), "  ", FormatBytes(result.size_bytes()), "  ",
                    result.media_type(), "\n");
  }
  return out;
}

}  // namespace

grpc::Status GetChainRetrying(Session& session, const std::string& name, absl::Time deadline,
                              Chain* chain) {
  const absl::Time give_up = std::min(deadline, absl::Now() + kMaxWatchOutage);
  absl::Duration backoff = kWatchBackoffInitial;
  conveyor::v1::GetChainRequest get;
  get.set_name(name);
  while (true) {
    grpc::Status status = session.Call(&conveyor::v1::Orchestrator::Stub::GetChain, get, chain);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || absl::Now() >= give_up) {
      return status;
    }
    absl::SleepFor(std::min(backoff, give_up - absl::Now()));
    backoff = std::min(backoff * 2, kWatchBackoffMax);
  }
}

FollowResult Follow(Session& session, const std::string& name, absl::Duration max_wait,
                    const std::function<void(const ChainEvent&)>& on_event) {
  FollowResult result;
  const absl::Time deadline =
      max_wait == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + max_wait;
  std::string after_event_id;
  absl::Duration backoff = kWatchBackoffInitial;
  absl::Time unavailable_since = absl::InfiniteFuture();
  while (true) {
    std::unique_ptr<grpc::ClientContext> context = session.StreamContext(deadline);
    conveyor::v1::WatchChainRequest request;
    request.set_name(name);
    request.set_after_event_id(after_event_id);
    std::unique_ptr<grpc::ClientReader<ChainEvent>> reader =
        session.stub().WatchChain(context.get(), request);
    ChainEvent event;
    bool progressed = false;
    while (reader->Read(&event)) {
      progressed = true;
      after_event_id = event.event_id();
      result.state = event.chain_state();
      if (event.has_error()) result.error = event.error();
      on_event(event);
    }
    result.status = reader->Finish();
    if (result.status.ok()) break;
    const absl::Time now = absl::Now();
    if (result.status.error_code() != grpc::StatusCode::UNAVAILABLE || now >= deadline) {
      return result;
    }
    // A stream that delivered events was a working connection: the outage
    // (and the backoff) starts afresh.
    if (progressed || unavailable_since == absl::InfiniteFuture()) {
      unavailable_since = now;
      backoff = kWatchBackoffInitial;
    }
    if (now - unavailable_since >= kMaxWatchOutage) return result;
    // Ask another replica (or the same one, back) after a pause.
    absl::SleepFor(std::min(backoff, deadline - now));
    backoff = std::min(backoff * 2, kWatchBackoffMax);
  }
  // The stream ended: normally at a terminal event. Read the chain to be sure
  // of its final state and error.
  Chain chain;
  grpc::Status status = GetChainRetrying(session, name, deadline, &chain);
  if (!status.ok()) {
    result.status = status;
    return result;
  }
  result.state = chain.state();
  result.error = chain.error();
  return result;
}

std::vector<StageKind> KindsOf(const conveyor::v1::ChainSpec& spec) {
  std::vector<StageKind> kinds;
  for (const auto& step : spec.steps()) kinds.push_back(StepKind(step));
  return kinds;
}

int FollowAndReport(Session& session, const GlobalOptions& global, const Chain& chain,
                    absl::Duration max_wait) {
  WatchView view(KindsOf(chain.spec()), StdoutIsTerminal());
  FollowResult result = Follow(session, chain.name(), max_wait, [&](const ChainEvent& event) {
    if (global.json) return;
    std::cout << view.OnEvent(event) << std::flush;
  });
  if (!global.json) std::cout << view.Finish() << std::flush;
  if (!result.status.ok()) return RpcError(result.status, session.token_source());
  Chain final_chain;
  if (grpc::Status status =
          GetChainRetrying(session, chain.name(), absl::Now() + kMaxWatchOutage, &final_chain);
      !status.ok()) {
    return RpcError(status, session.token_source());
  }
  PrintResult(global, final_chain, FinalSummary(final_chain));
  return final_chain.state() == conveyor::v1::SUCCEEDED ? kExitOk : kExitChainFailed;
}

}  // namespace conveyor::client
