// The CLI's connection to the orchestrator: one channel and stub, the
// bearer token (token_source.h), and the unary call under the --timeout
// deadline. Every call's ClientContext comes from here, so every call
// carries the token. The stub is thread-safe, so the `batch` workers share
// one Session.
#ifndef CONVEYOR_CLIENT_SESSION_H_
#define CONVEYOR_CLIENT_SESSION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/cli_io.h"
#include "client/commands.h"
#include "client/token_source.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"

namespace conveyor::client {

class Session {
 public:
  // INVALID_ARGUMENT for a bad --timeout, an empty --server, or bad TLS
  // flags or files (common/tls_credentials.h); ResolveToken's errors for a
  // token source that is given but unusable (a token file others can read).
  static absl::StatusOr<std::unique_ptr<Session>> Open(const GlobalOptions& global);

  conveyor::v1::Orchestrator::Stub& stub() { return *stub_; }

  // Where the token came from (never the token), for error hints (cli_io.h RpcError).
  const TokenSource& token_source() const { return token_.source; }

  // A context with the token, whose deadline is --timeout from now.
  std::unique_ptr<grpc::ClientContext> UnaryContext() const;
  // A context with the token for a stream that may outlive --timeout
  // (WatchChain): deadline `deadline`, none if InfiniteFuture().
  std::unique_ptr<grpc::ClientContext> StreamContext(absl::Time deadline) const;

  // One unary RPC, e.g. Call(&Orchestrator::Stub::GetChain, request, &chain),
  // under the --timeout deadline.
  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (conveyor::v1::Orchestrator::Stub::*method)(grpc::ClientContext*,
                                                                             const Request&,
                                                                             Response*),
                    const Request& request, Response* response) {
    std::unique_ptr<grpc::ClientContext> context = UnaryContext();
    return (stub_.get()->*method)(context.get(), request, response);
  }

 private:
  Session(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout, BearerToken token);

  std::unique_ptr<conveyor::v1::Orchestrator::Stub> stub_;
  absl::Duration timeout_;
  BearerToken token_;
};

// Opens the session and returns `verb(session)`, the verb's exit code; a bad
// --server or --timeout is a usage error (kExitUsage) and runs nothing.
template <typename Verb>
int WithSession(const GlobalOptions& global, Verb&& verb) {
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Open(global);
  if (!session.ok()) return UsageError(session.status());
  return verb(**session);
}

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_SESSION_H_
