// A real conveyor-orchestrator process for integration tests and benchmarks,
// and the stub to talk to it (calls with deadlines: orchestrator_client.h).
#ifndef CONVEYOR_TESTS_TESTING_ORCHESTRATOR_PROCESS_H_
#define CONVEYOR_TESTS_TESTING_ORCHESTRATOR_PROCESS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::testing {

// A stub on a channel of its own (a local subchannel pool), so a test's
// clients never share a connection, nor its backoff after an outage.
// `max_reconnect_backoff` other than zero caps that backoff.
std::unique_ptr<v1::Orchestrator::Stub> NewOrchestratorStub(
    const std::string& address, absl::Duration max_reconnect_backoff = absl::ZeroDuration());

// conveyor-orchestrator on 127.0.0.1:0 (or `port`, to restart one where its
// clients expect it) against `redis_url`. Each stage's --<name>-target comes
// from `targets` (keyed by the registry's stage name, "resize"); a stage left
// out points at a loopback port where nothing listens. `extra_flags` follow.
// Callers are anonymous with every scope (--allow-anonymous --anonymous-scopes
// ...,admin) unless `extra_flags` configure caller authentication
// (--tokens-file, --jwt-keys, --allow-anonymous, --anonymous-scopes): then
// those alone decide.
// The constructor returns once it serves, or failed to (ready()).
class OrchestratorProcess {
 public:
  OrchestratorProcess(const std::string& redis_url,
                      const std::map<std::string, std::string>& targets,
                      std::vector<std::string> extra_flags = {}, std::string log_path = "",
                      int port = 0);

  // OK once it serves grpc.health.v1; why not otherwise.
  const absl::Status& ready() const { return ready_; }
  std::string address() const { return server_->address(); }
  int port() const { return server_->port(); }
  ScopedProcess& process() { return server_->process(); }
  // A stub from NewOrchestratorStub(address()).
  v1::Orchestrator::Stub& stub() { return *stub_; }

 private:
  std::unique_ptr<ServerProcess> server_;
  absl::Status ready_;
  std::unique_ptr<v1::Orchestrator::Stub> stub_;
};

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_ORCHESTRATOR_PROCESS_H_
