// The runtime every Conveyor server shares: the five stage workers and the
// orchestrator. One place for listen address, message limits, health,
// reflection, signal handling and graceful shutdown.
//
//   int main(int argc, char** argv) {
//     conveyor::BlockTerminationSignals();   // before any thread starts
//     ... parse flags into ServerOptions, build services ...
//     return conveyor::RunServer(options, {&service});
//   }
#ifndef CONVEYOR_COMMON_SERVER_H_
#define CONVEYOR_COMMON_SERVER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/tls_credentials.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace conveyor {

struct ServerOptions {
  // host:port to listen on; port 0 lets the kernel choose (see port_file).
  std::string listen;
  // If set, the bound port is written here (decimal, newline) once the server
  // listens: to a temporary file renamed into place, so a reader polling for
  // it never sees a partial number. How scripts and tests start servers on
  // :0 without the race of "bind 0, close, pass the number on".
  std::string port_file;
  // Threads doing the blocking work of requests.
  int worker_threads = 4;
  // Requests that may wait for a worker thread; beyond threads + queue a
  // request gets RESOURCE_EXHAUSTED at once.
  int max_queued = 16;
  // Largest request or response message, in bytes.
  int64_t max_message_bytes = 64 << 20;
  // How long SIGTERM waits for in-flight requests before cancelling them.
  absl::Duration shutdown_grace = absl::Seconds(30);
  // After SIGTERM, how long the server keeps accepting calls while health
  // already answers NOT_SERVING, so health checkers (the orchestrator, load
  // balancers) see "draining" and stop sending before it stops accepting.
  // A second SIGTERM/SIGINT cuts it short. Zero: stop accepting at once.
  absl::Duration drain_delay = absl::ZeroDuration();
  // Connections older than this are closed gracefully (GOAWAY), so clients
  // that resolve a DNS name (dns:/// + round_robin) re-resolve and find
  // replicas added since. Zero disables it.
  absl::Duration max_connection_age = absl::Minutes(5);
  // debug, info, warn or error.
  std::string log_level = "info";
  // Serve gRPC server reflection (what grpcurl lists and describes with). It
  // tells any caller who reached the port every method and message; off
  // (--reflection=false) where callers need not discover the API.
  bool reflection = true;
  // --tls-cert, --tls-key, --tls-client-ca, --insecure (and on workers
  // --tls-client-name): common/tls_credentials.h.
  ServerTlsOptions tls;
};

struct ServerHooks {
  // Called once the server listens (e.g. to start background threads or to
  // drive the health status).
  std::function<void(grpc::Server&)> on_started;
  // Called when SIGTERM/SIGINT arrives, before the server stops accepting
  // (e.g. to stop background dispatch).
  std::function<void()> on_draining;
};

// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread
// started after it; RunServer then receives them with sigwait. Call first in
// main(), before any thread exists.
void BlockTerminationSignals();

// Serves `services` plus grpc.health.v1 (common/health_service.h:
// status "" and one per registered service, e.g. "conveyor.v1.ResizeStage")
// and server reflection (unless options.reflection is false) until SIGTERM
// or SIGINT, then: health NOT_SERVING, stop accepting, wait up to
// options.shutdown_grace for in-flight calls, exit. SO_REUSEPORT is off, so
// a port already in use is an error, not a silent split of connections
// between two processes. Serves TLS (mTLS with a client CA) from
// options.tls, plaintext only with --insecure (a warning line at start).
// Returns the process exit code: 0 after a clean shutdown; 2 for bad TLS
// flags or files, or neither TLS nor --insecure (one line on stderr:
// "<program>: <what is wrong>"); 1 if it could not listen (one line on
// stderr: "<program>: cannot listen on <address>: <reason>") or could not
// write options.port_file.
int RunServer(const ServerOptions& options, const std::vector<grpc::Service*>& services,
              const ServerHooks& hooks = {});

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_SERVER_H_
