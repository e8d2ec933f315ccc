// Command-line flags shared by every server binary, with CONVEYOR_*
// environment variables as fallbacks (a flag given on the command line wins).
// Included only by main.cc files: CLI11 is a heavy header.
#ifndef CONVEYOR_COMMON_SERVER_FLAGS_H_
#define CONVEYOR_COMMON_SERVER_FLAGS_H_

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "absl/time/time.h"
#include "common/server.h"

namespace conveyor {

// A duration flag written like "30s", "250ms" or "1h".
inline CLI::Option* AddDurationFlag(CLI::App& app, const std::string& name,
                                    absl::Duration& target, const std::string& help,
                                    const std::string& env) {
  return app
      .add_option_function<std::string>(
          name,
          [&target, name](const std::string& text) {
            absl::Duration parsed;
            if (!absl::ParseDuration(text, &parsed) || parsed < absl::ZeroDuration()) {
              throw CLI::ValidationError(name, "want a duration such as 250ms, 30s or 5m, got \"" +
                                                   text + "\"");
            }
            target = parsed;
          },
          help + " (default " + absl::FormatDuration(target) + ")")
      ->envname(env)
      ->type_name("DURATION");
}

// Parses the command line. Returns the exit code when main() should stop at
// once: 0 after --help, 2 after a bad flag (one clear line on stderr);
// nullopt to go on.
inline absl::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    std::string name = app.get_name();
    name = name.substr(name.rfind('/') + 1);
    std::cerr << name << ": " << error.what() << " (see --help)\n";
    return 2;
  }
  return absl::nullopt;
}

// The TLS flags of every server (docs/security.md, "TLS and mTLS").
inline void AddServerTlsFlags(CLI::App& app, ServerTlsOptions& tls) {
  app.add_option("--tls-cert", tls.cert_file,
                 "PEM certificate chain to serve TLS with (reloaded when the file changes)")
      ->envname("CONVEYOR_TLS_CERT");
  app.add_option("--tls-key", tls.key_file, "PEM private key of --tls-cert")
      ->envname("CONVEYOR_TLS_KEY");
  app.add_option("--tls-client-ca", tls.client_ca_file,
                 "PEM CA certificates: require client certificates signed by them (mTLS)")
      ->envname("CONVEYOR_TLS_CLIENT_CA");
  app.add_flag("--insecure", tls.insecure,
               "serve plaintext when no --tls-* flag is given (logs a warning); without TLS "
               "flags or this the server refuses to start")
      ->envname("CONVEYOR_INSECURE");
  AddDurationFlag(app, "--tls-reload-interval", tls.reload_interval,
                  "how often certificate, key and CA files are checked for changes",
                  "CONVEYOR_TLS_RELOAD_INTERVAL");
}

inline void AddServerFlags(CLI::App& app, ServerOptions& options) {
  app.add_option("--listen", options.listen, "host:port to serve gRPC on")
      ->envname("CONVEYOR_LISTEN")
      ->capture_default_str();
  app.add_option("--port-file", options.port_file,
                 "write the bound port here once listening (atomically, via rename); with "
                 "--listen 127.0.0.1:0 the way to learn which port the kernel chose")
      ->envname("CONVEYOR_PORT_FILE");
  app.add_option("--worker-threads", options.worker_threads,
                 "threads doing the blocking work of requests")
      ->envname("CONVEYOR_WORKER_THREADS")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--max-queued", options.max_queued,
                 "requests that may wait for a thread; beyond that RESOURCE_EXHAUSTED")
      ->envname("CONVEYOR_MAX_QUEUED")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--max-message-bytes", options.max_message_bytes,
                 "largest gRPC request or response message in bytes")
      ->envname("CONVEYOR_MAX_MESSAGE_BYTES")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 30))
      ->capture_default_str();
  AddDurationFlag(app, "--shutdown-grace", options.shutdown_grace,
                  "on SIGTERM, how long in-flight calls may finish", "CONVEYOR_SHUTDOWN_GRACE");
  AddDurationFlag(app, "--drain-delay", options.drain_delay,
                  "on SIGTERM, keep accepting calls this long with health NOT_SERVING, so "
                  "health checkers stop sending first; a second signal cuts it short",
                  "CONVEYOR_DRAIN_DELAY");
  AddDurationFlag(app, "--max-connection-age", options.max_connection_age,
                  "close client connections after this long (they reconnect at once), so "
                  "clients re-resolve DNS and spread over new replicas; 0 disables",
                  "CONVEYOR_MAX_CONNECTION_AGE");
  app.add_option("--reflection", options.reflection,
                 "serve gRPC server reflection (grpcurl list/describe); --reflection=false "
                 "turns it off")
      ->envname("CONVEYOR_REFLECTION")
      ->capture_default_str();
  app.add_option("--log-level", options.log_level, "debug, info, warn or error")
      ->envname("CONVEYOR_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  AddServerTlsFlags(app, options.tls);
}

// --tls-client-name, for the stage workers only (common/allowed_peer.h).
inline void AddClientNameFlag(CLI::App& app, ServerTlsOptions& tls) {
  app.add_option("--tls-client-name", tls.allowed_client_name,
                 "with --tls-client-ca: serve the stage method only to the client certificate "
                 "carrying this name (SAN DNS or URI, or CN), e.g. orchestrator; others get "
                 "PERMISSION_DENIED (health and reflection stay open)")
      ->envname("CONVEYOR_TLS_CLIENT_NAME");
}

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_SERVER_FLAGS_H_
