// The runtime every Conveyor server shares: the five stage workers and the
// orchestrator. One place for listen address, message limits, health,
// reflection, signal handling and graceful shutdown.
//
//   int main(int argc, char** argv) {
//     conveyor::BlockTerminationSignals();   // before any thread starts
//     ... parse flags into ServerOptions, build services ...
//     return conveyor::RunServer(options, {&service});
//   }
#ifndef CONVEYOR_STAGES_COMMON_SERVER_H_
#define CONVEYOR_STAGES_COMMON_SERVER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace conveyor {

struct ServerOptions {
  // host:port to listen on.
  std::string listen;
  // Threads doing the blocking work of requests.
  int worker_threads = 4;
  // Requests that may wait for a worker thread; beyond threads + queue a
  // request gets RESOURCE_EXHAUSTED at once.
  int max_queued = 16;
  // Largest request or response message, in bytes.
  int64_t max_message_bytes = 64 << 20;
  // How long SIGTERM waits for in-flight requests before cancelling them.
  absl::Duration shutdown_grace = absl::Seconds(30);
  // Connections older than this are closed gracefully (GOAWAY), so clients
  // that resolve a DNS name (dns:/// + round_robin) re-resolve and find
  // replicas added since. Zero disables it.
  absl::Duration max_connection_age = absl::Minutes(5);
  // debug, info, warn or error.
  std::string log_level = "info";
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

// Serves `services` plus grpc.health.v1 and server reflection until SIGTERM or
// SIGINT, then: health NOT_SERVING, stop accepting, wait up to
// options.shutdown_grace for in-flight calls, exit. Returns the process exit
// code: 0 after a clean shutdown, 1 if it could not listen.
int RunServer(const ServerOptions& options, const std::vector<grpc::Service*>& services,
              const ServerHooks& hooks = {});

}  // namespace conveyor

#endif  // CONVEYOR_STAGES_COMMON_SERVER_H_
