#include "client/session.h"

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "client/flag_values.h"
#include "common/tls_credentials.h"

namespace conveyor::client {

absl::StatusOr<std::unique_ptr<Session>> Session::Open(const GlobalOptions& global) {
  absl::StatusOr<absl::Duration> timeout = ParseDurationFlag("--timeout", global.timeout);
  if (!timeout.ok()) return timeout.status();
  if (global.server.empty()) return absl::InvalidArgumentError("--server: must not be empty");
  ChannelTlsOptions tls;
  tls.ca_file = global.tls_ca;
  tls.cert_file = global.tls_cert;
  tls.key_file = global.tls_key;
  tls.server_name = global.tls_server_name;
  tls.insecure = global.insecure;
  absl::StatusOr<ChannelSecurity> security = MakeChannelSecurity(tls);
  if (!security.ok()) return security.status();
  absl::StatusOr<BearerToken> token =
      ResolveToken(TokenInputsFromEnvironment(global.token, global.token_file));
  if (!token.ok()) return token.status();
  grpc::ChannelArguments args;
  security->ApplyTo(args);
  return std::unique_ptr<Session>(
      new Session(grpc::CreateCustomChannel(global.server, security->credentials, args), *timeout,
                  *std::move(token)));
}

Session::Session(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout, BearerToken token)
    : stub_(conveyor::v1::Orchestrator::NewStub(std::move(channel))),
      timeout_(timeout),
      token_(std::move(token)) {}

std::unique_ptr<grpc::ClientContext> Session::UnaryContext() const {
  return StreamContext(absl::Now() + timeout_);
}

std::unique_ptr<grpc::ClientContext> Session::StreamContext(absl::Time deadline) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (deadline != absl::InfiniteFuture()) context->set_deadline(absl::ToChronoTime(deadline));
  // Per-call metadata rather than call credentials: gRPC refuses call
  // credentials on a plaintext (--insecure) channel, and one way for both
  // kinds of channel keeps one path to test. Over TLS the header goes
  // encrypted like the rest of the call.
  if (!token_.value.empty()) context->AddMetadata("authorization", "Bearer " + token_.value);
  return context;
}

}  // namespace conveyor::client
