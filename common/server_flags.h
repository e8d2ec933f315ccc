// Command-line flags shared by every server binary, with CONVEYOR_*
// environment variables as fallbacks (common/cli_flags.h). Included only by
// main.cc files: CLI11 is a heavy header.
#ifndef CONVEYOR_COMMON_SERVER_FLAGS_H_
#define CONVEYOR_COMMON_SERVER_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>

#include "absl/time/time.h"
#include "common/cli_flags.h"
#include "common/server.h"
#include "common/tls_credentials.h"

namespace conveyor {

// The TLS flags of every server (docs/security.md, "TLS and mTLS").
inline void AddServerTlsFlags(CLI::App& app, ServerTlsOptions& tls) {
  AddEnvOption(app, "--tls-cert", tls.cert_file,
               "PEM certificate chain to serve TLS with (reloaded when the file changes)");
  AddEnvOption(app, "--tls-key", tls.key_file, "PEM private key of --tls-cert");
  AddEnvOption(app, "--tls-client-ca", tls.client_ca_file,
               "PEM CA certificates: require client certificates signed by them (mTLS)");
  AddEnvFlag(app, "--insecure", tls.insecure,
             "serve plaintext when no --tls-* flag is given (logs a warning); without TLS "
             "flags or this the server refuses to start");
  AddDurationFlag(app, "--tls-reload-interval", tls.reload_interval,
                  "how often certificate, key and CA files are checked for changes");
}

inline void AddServerFlags(CLI::App& app, ServerOptions& options) {
  AddEnvOption(app, "--listen", options.listen, "host:port to serve gRPC on")
      ->capture_default_str();
  AddEnvOption(app, "--port-file", options.port_file,
               "write the bound port here once listening (atomically, via rename); with "
               "--listen 127.0.0.1:0 the way to learn which port the kernel chose");
  AddEnvOption(app, "--worker-threads", options.worker_threads,
               "threads doing the blocking work of requests")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  AddEnvOption(app, "--max-queued", options.max_queued,
               "requests that may wait for a thread; beyond that RESOURCE_EXHAUSTED")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  AddEnvOption(app, "--max-message-bytes", options.max_message_bytes,
               "largest gRPC request or response message in bytes")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 30))
      ->capture_default_str();
  AddDurationFlag(app, "--shutdown-grace", options.shutdown_grace,
                  "on SIGTERM, how long in-flight calls may finish");
  AddDurationFlag(app, "--drain-delay", options.drain_delay,
                  "on SIGTERM, keep accepting calls this long with health NOT_SERVING, so "
                  "health checkers stop sending first; a second signal cuts it short");
  AddDurationFlag(app, "--max-connection-age", options.max_connection_age,
                  "close client connections after this long (they reconnect at once), so "
                  "clients re-resolve DNS and spread over new replicas; 0 disables");
  AddEnvOption(app, "--reflection", options.reflection,
               "serve gRPC server reflection (grpcurl list/describe); --reflection=false "
               "turns it off")
      ->capture_default_str();
  AddEnvOption(app, "--log-level", options.log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  AddServerTlsFlags(app, options.tls);
}

// The TLS flags of a channel this binary opens to `peer` ("workers", "the
// orchestrator"): --<prefix>tls-ca, -cert, -key, -server-name, e.g. the
// orchestrator's --worker-tls-* (docs/security.md, "TLS and mTLS").
inline void AddChannelTlsFlags(CLI::App& app, const std::string& prefix, const std::string& peer,
                               ChannelTlsOptions& tls) {
  tls.ca_flag = "--" + prefix + "tls-ca";
  tls.cert_flag = "--" + prefix + "tls-cert";
  tls.key_flag = "--" + prefix + "tls-key";
  AddEnvOption(app, tls.ca_flag, tls.ca_file,
               "PEM CA certificates that sign the server certificates of " + peer);
  AddEnvOption(app, tls.cert_flag, tls.cert_file,
               "PEM client certificate presented to " + peer + " (mTLS; reloaded on change)");
  AddEnvOption(app, tls.key_flag, tls.key_file, "PEM private key of " + tls.cert_flag);
  AddEnvOption(app, "--" + prefix + "tls-server-name", tls.server_name,
               "name to verify in the certificate of " + peer + " instead of each target's host");
}

// --tls-client-name, for the stage workers only (common/allowed_peer.h).
inline void AddClientNameFlag(CLI::App& app, ServerTlsOptions& tls) {
  AddEnvOption(app, "--tls-client-name", tls.allowed_client_name,
               "with --tls-client-ca: serve the stage method only to the client certificate "
               "carrying this name (SAN DNS or URI, or CN), e.g. orchestrator; others get "
               "PERMISSION_DENIED (health and reflection stay open)");
}

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_SERVER_FLAGS_H_
