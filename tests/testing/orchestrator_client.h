// Typed calls over v1::Orchestrator::Stub for integration tests, each with a
// deadline (the process they talk to: orchestrator_process.h).
//
// The helpers that return a value (GetChain, History, the WaitFor family,
// ListChainNames) record a gtest failure (ADD_FAILURE / EXPECT) when a call
// fails or a wait times out, and return what they have, so a test reads as
// its own assertions.
#ifndef CONVEYOR_TESTS_TESTING_ORCHESTRATOR_CLIENT_H_
#define CONVEYOR_TESTS_TESTING_ORCHESTRATOR_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <set>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"

namespace conveyor::testing {

bool IsTerminal(v1::State state);

// SubmitChain with a 10 s deadline.
grpc::Status SubmitChain(v1::Orchestrator::Stub& stub, const v1::SubmitChainRequest& request,
                         v1::Chain* chain);

// GetChain with a 10 s deadline; a failed call is a test failure.
v1::Chain GetChain(v1::Orchestrator::Stub& stub, const std::string& name);

// Polls GetChain every 20 ms until `done(chain)`; the last chain seen, and a
// test failure, after `timeout`.
v1::Chain WaitForChain(v1::Orchestrator::Stub& stub, const std::string& name,
                       absl::FunctionRef<bool(const v1::Chain&)> done,
                       absl::Duration timeout = absl::Seconds(20));
// Until SUCCEEDED, FAILED or CANCELLED.
v1::Chain WaitForTerminal(v1::Orchestrator::Stub& stub, const std::string& name,
                          absl::Duration timeout = absl::Seconds(20));
// Until the chain is in `state`.
v1::Chain WaitForState(v1::Orchestrator::Stub& stub, const std::string& name, v1::State state,
                       absl::Duration timeout = absl::Seconds(20));

// WatchChain from after `after_event_id` ("" = the start) to the end of the
// stream, within 20 s; how it ended in `status`.
std::vector<v1::ChainEvent> WatchEvents(v1::Orchestrator::Stub& stub, const std::string& name,
                                        const std::string& after_event_id, grpc::Status* status);
// The chain's whole recorded history; a failed watch is a test failure.
std::vector<v1::ChainEvent> History(v1::Orchestrator::Stub& stub, const std::string& name);

// The names of every chain `request` lists, following next_page_token for
// up to `max_pages` pages; a failed call is a test failure.
std::set<std::string> ListChainNames(v1::Orchestrator::Stub& stub, v1::ListChainsRequest request,
                                     int max_pages = 20);

// One line of conveyor-test-flaky-stage's --calls-file
// (tests/orchestrator/flaky_stage_main.cc): a call it received.
struct FlakyCall {
  std::string chain;  // "chains/<id>"
  int step = 0;
  int attempt = 0;
  std::string outcome;  // "ok", "fail", "cancelled", ...
};
// Every call in `calls_file`, in the order the worker received them.
std::vector<FlakyCall> ReadFlakyCalls(const std::string& calls_file);

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_ORCHESTRATOR_CLIENT_H_
