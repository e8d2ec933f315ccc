// The dashboard's HTTP server (--http-listen): cpp-httplib on threads of its
// own, over DashboardEndpoints (what each URL does) and the embedded pages;
// plus the sampler that fills the status history. HTTPS with the gRPC
// server's --tls-cert/--tls-key when it has them.
//
// Threads: `request_threads` + `max_streams` serve requests (a live stream
// holds one thread for its life; streams beyond `max_streams` get 429 at
// once, so plain requests always find a thread), one samples the status.
// Stop() ends the streams (within about a second), stops accepting and
// joins every thread; the destructor calls it.
#ifndef CONVEYOR_ORCHESTRATOR_DASHBOARD_DASHBOARD_SERVER_H_
#define CONVEYOR_ORCHESTRATOR_DASHBOARD_DASHBOARD_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "orchestrator/auth/authenticator.h"
#include "orchestrator/chain_api.h"
#include "orchestrator/dashboard/dashboard_endpoints.h"
#include "orchestrator/dashboard/status_history.h"

namespace httplib {
class Server;
}

namespace conveyor::orchestrator::dashboard {

struct DashboardOptions {
  // host:port; port 0 lets the kernel pick (see port_file).
  std::string listen;
  // If set, the bound port is written here once listening (temp + rename).
  std::string port_file;
  // HTTPS when both are set (the gRPC server's certificate).
  std::string tls_cert_file;
  std::string tls_key_file;
  int request_threads = 4;
  int max_streams = 32;
  // One GetSystemStatus sample every interval, the newest `history_samples`
  // kept: 2 s x 300 = the last 10 minutes.
  absl::Duration sample_interval = absl::Seconds(2);
  size_t history_samples = 300;
  DashboardEndpointOptions endpoints;
};

class DashboardServer {
 public:
  // `api`, `store`, `authenticator` and `clock` must outlive the server.
  DashboardServer(ChainApi& api, ChainStore& store, const auth::Authenticator& authenticator,
                  const Clock& clock, DashboardOptions options);
  ~DashboardServer();
  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  // Binds and starts serving. INVALID_ARGUMENT for a bad listen address or
  // TLS files that do not load; UNAVAILABLE if the address is taken.
  absl::Status Start();
  // The bound port, once started.
  int port() const { return port_; }
  // "http://127.0.0.1:8080/" (or https); for the start-up log line.
  std::string url() const;
  void Stop();

 private:
  void Route();
  void Sample();

  ChainApi& api_;
  const Clock& clock_;
  const DashboardOptions options_;
  StatusHistory history_;
  DashboardEndpoints endpoints_;
  std::unique_ptr<httplib::Server> http_;
  std::string host_;
  int port_ = 0;
  std::atomic<int> streams_{0};
  absl::Notification stopping_;
  std::thread listener_;
  std::thread sampler_;
};

}  // namespace conveyor::orchestrator::dashboard

#endif  // CONVEYOR_ORCHESTRATOR_DASHBOARD_DASHBOARD_SERVER_H_
