// TLS for every gRPC hop: server credentials (TLS, or mTLS with
// --tls-client-ca) and channel credentials (a CA to trust, optionally a
// client certificate), both from file paths given as flags, both over gRPC's
// FileWatcherCertificateProvider: a certificate, key or CA file replaced in
// place is served from the next handshake on, within `reload_interval`,
// without a restart (docs/security.md, "TLS and mTLS").
//
// Plaintext only where the operator said --insecure and gave no TLS flag:
// any TLS flag wins over --insecure (the safe direction; test fixtures and
// scripts set CONVEYOR_INSECURE=1 in the environment and some of them add
// TLS flags on top).
//
// Every file is checked at start (exists, parses as PEM, the key belongs to
// the certificate): INVALID_ARGUMENT naming the flag and the file, which
// main() prints as one line before it exits 2.
#ifndef CONVEYOR_COMMON_TLS_CREDENTIALS_H_
#define CONVEYOR_COMMON_TLS_CREDENTIALS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace conveyor {

// A server's TLS flags (common/server_flags.h adds them to every server).
struct ServerTlsOptions {
  std::string cert_file;       // --tls-cert: the server's certificate chain (PEM)
  std::string key_file;        // --tls-key: its private key (PEM)
  std::string client_ca_file;  // --tls-client-ca: require client certs signed by these CAs
  // --tls-client-name (workers): the identity a client certificate must carry
  // (SAN DNS, SAN URI or CN) for the stage method; common/allowed_peer.h.
  std::string allowed_client_name;
  bool insecure = false;  // --insecure: plaintext, when no TLS flag is given
  // --tls-reload-interval: how often the files are checked for changes.
  absl::Duration reload_interval = absl::Seconds(60);
};

// A client's TLS flags: the CLI's --tls-*, the orchestrator's --worker-tls-*.
struct ChannelTlsOptions {
  std::string ca_file;      // CAs that sign the server's certificate; "" = system roots
  std::string cert_file;    // client certificate for mTLS ("" = none)
  std::string key_file;     // its key
  std::string server_name;  // name to verify in the server's certificate ("" = the target's host)
  bool insecure = false;    // plaintext, when no TLS flag is given
  absl::Duration reload_interval = absl::Seconds(60);
  // The flag names, for messages: {"--tls-ca", "--tls-cert", "--tls-key"} or
  // the orchestrator's --worker-tls-* names.
  std::string ca_flag = "--tls-ca";
  std::string cert_flag = "--tls-cert";
  std::string key_flag = "--tls-key";
  // Without ca_file: true = trust the system roots (the CLI, whose server may
  // have a public certificate); false = a CA file is required unless
  // insecure (the orchestrator's worker channels: workers never have a
  // publicly signed certificate, and a missing flag must not mean plaintext).
  bool system_roots_allowed = true;
};

// True when the server serves TLS (any of cert/key/client CA given).
bool ServerUsesTls(const ServerTlsOptions& options);

// Checks the flags and files: cert and key given together, files readable
// and PEM, key matching the certificate, a client CA that parses,
// --tls-client-name only with --tls-client-ca, and TLS or --insecure.
// INVALID_ARGUMENT naming the flag (and file) otherwise.
absl::Status CheckServerTls(const ServerTlsOptions& options);

// The server's credentials after CheckServerTls: InsecureServerCredentials
// with --insecure alone, else TLS over a FileWatcherCertificateProvider
// (requiring and verifying client certificates with a client CA), with
// common/allowed_peer.h's check when allowed_client_name is set.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsOptions& options);

// Credentials for a client channel, and the server-name override its
// channel arguments need (ApplyTo).
struct ChannelSecurity {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string server_name;  // "" = verify the target's own host name
  bool tls = false;
  // Sets the server-name override (if any) on `args`.
  void ApplyTo(grpc::ChannelArguments& args) const;
};

// Checks the flags and files as CheckServerTls does (INVALID_ARGUMENT naming
// the flag) and builds the channel's credentials: plaintext only with
// `insecure` and no TLS flag.
absl::StatusOr<ChannelSecurity> MakeChannelSecurity(const ChannelTlsOptions& options);

// The refresh interval in whole seconds as the provider takes it (at least 1).
unsigned int ReloadIntervalSeconds(absl::Duration interval);

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_TLS_CREDENTIALS_H_
