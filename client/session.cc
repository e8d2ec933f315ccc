#include "client/session.h"

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "client/flag_values.h"

namespace conveyor::client {

absl::StatusOr<std::unique_ptr<Session>> Session::Open(const GlobalOptions& global) {
  absl::StatusOr<absl::Duration> timeout = ParseDurationFlag("--timeout", global.timeout);
  if (!timeout.ok()) return timeout.status();
  if (global.server.empty()) return absl::InvalidArgumentError("--server: must not be empty");
  return std::unique_ptr<Session>(new Session(global.server, *timeout));
}

Session::Session(const std::string& server, absl::Duration timeout)
    : stub_(conveyor::v1::Orchestrator::NewStub(
          grpc::CreateChannel(server, grpc::InsecureChannelCredentials()))),
      timeout_(timeout) {}

std::unique_ptr<grpc::ClientContext> Session::UnaryContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  return context;
}

}  // namespace conveyor::client
