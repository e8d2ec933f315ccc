#include "tests/testing/orchestrator_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "absl/time/clock.h"

namespace conveyor::testing {
namespace {

void SetDeadline(grpc::ClientContext& ctx, absl::Duration timeout) {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

}  // namespace

bool IsTerminal(v1::State state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

grpc::Status SubmitChain(v1::Orchestrator::Stub& stub, const v1::SubmitChainRequest& request,
                         v1::Chain* chain) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, absl::Seconds(10));
  return stub.SubmitChain(&ctx, request, chain);
}

v1::Chain GetChain(v1::Orchestrator::Stub& stub, const std::string& name) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, absl::Seconds(10));
  v1::GetChainRequest request;
  request.set_name(name);
  v1::Chain chain;
  grpc::Status status = stub.GetChain(&ctx, request, &chain);
  EXPECT_TRUE(status.ok()) << name << ": " << status.error_message();
  return chain;
}

v1::Chain WaitForChain(v1::Orchestrator::Stub& stub, const std::string& name,
                       absl::FunctionRef<bool(const v1::Chain&)> done, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  v1::Chain chain;
  while (absl::Now() < until) {
    chain = GetChain(stub, name);
    if (done(chain)) return chain;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ADD_FAILURE() << "timed out waiting on " << name << ": " << chain.ShortDebugString();
  return chain;
}

v1::Chain WaitForTerminal(v1::Orchestrator::Stub& stub, const std::string& name,
                          absl::Duration timeout) {
  return WaitForChain(
      stub, name, [](const v1::Chain& c) { return IsTerminal(c.state()); }, timeout);
}

v1::Chain WaitForState(v1::Orchestrator::Stub& stub, const std::string& name, v1::State state,
                       absl::Duration timeout) {
  return WaitForChain(
      stub, name, [state](const v1::Chain& c) { return c.state() == state; }, timeout);
}

std::vector<v1::ChainEvent> WatchEvents(v1::Orchestrator::Stub& stub, const std::string& name,
                                        const std::string& after_event_id, grpc::Status* status) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, absl::Seconds(20));
  v1::WatchChainRequest request;
  request.set_name(name);
  request.set_after_event_id(after_event_id);
  auto reader = stub.WatchChain(&ctx, request);
  std::vector<v1::ChainEvent> events;
  v1::ChainEvent event;
  while (reader->Read(&event)) events.push_back(event);
  *status = reader->Finish();
  return events;
}

std::vector<v1::ChainEvent> History(v1::Orchestrator::Stub& stub, const std::string& name) {
  grpc::Status status;
  std::vector<v1::ChainEvent> events = WatchEvents(stub, name, "", &status);
  EXPECT_TRUE(status.ok()) << name << ": " << status.error_message();
  return events;
}

std::set<std::string> ListChainNames(v1::Orchestrator::Stub& stub, v1::ListChainsRequest request,
                                     int max_pages) {
  std::set<std::string> names;
  for (int page = 0; page < max_pages; ++page) {
    grpc::ClientContext ctx;
    SetDeadline(ctx, absl::Seconds(10));
    v1::ListChainsResponse response;
    grpc::Status status = stub.ListChains(&ctx, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const v1::Chain& chain : response.chains()) names.insert(chain.name());
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  return names;
}

std::vector<FlakyCall> ReadFlakyCalls(const std::string& calls_file) {
  std::vector<FlakyCall> calls;
  std::ifstream in(calls_file);
  FlakyCall call;
  while (in >> call.chain >> call.step >> call.attempt >> call.outcome) calls.push_back(call);
  return calls;
}

}  // namespace conveyor::testing
