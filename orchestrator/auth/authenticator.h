// Who is calling: turns a call's credentials (its `authorization` metadata
// and the verified mTLS client certificate's names) into the Caller that
// ChainApi scopes everything by. No gRPC: the service adapter
// (orchestrator_service.cc) reads the metadata and the AuthContext.
//
// In order:
//   1. An authorization header, if present, decides alone: it must be
//      "Bearer <token>". A token of three dot-separated parts is a JWT when
//      --jwt-keys is set (jwt_verifier.h); any other token is looked up in
//      --tokens-file (tokens_file.h). A bad one is UNAUTHENTICATED, never
//      anonymous and never the certificate's identity: a client that sent
//      a token meant it.
//   2. Without one, a client certificate whose name a `cert:` line of the
//      tokens file lists is that line's caller.
//   3. Otherwise, with --allow-anonymous, the anonymous caller (principal
//      "anonymous", tenant "default", --anonymous-scopes); without it,
//      UNAUTHENTICATED. A certificate no `cert:` line lists only proved it
//      is of the CA, which is what --tls-client-ca asks, not who it is.
//
// UNAUTHENTICATED messages say what is wrong (no token, malformed header,
// unknown token, expired JWT, ...) and never contain the token.
//
// Files are re-read when they change (reloading_file.h), checked on a call
// at most once per reload interval. Thread-safe.
#ifndef CONVEYOR_ORCHESTRATOR_AUTH_AUTHENTICATOR_H_
#define CONVEYOR_ORCHESTRATOR_AUTH_AUTHENTICATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/auth/jwt_keys.h"
#include "orchestrator/auth/jwt_verifier.h"
#include "orchestrator/auth/reloading_file.h"
#include "orchestrator/auth/tokens_file.h"
#include "orchestrator/caller.h"
#include "orchestrator/clock.h"

namespace conveyor::orchestrator::auth {

struct AuthOptions {
  std::string tokens_file;    // --tokens-file
  std::string jwt_keys_file;  // --jwt-keys
  std::string jwt_issuer;     // --jwt-issuer
  std::string jwt_audience;   // --jwt-audience
  bool allow_anonymous = false;
  // --anonymous-scopes: every chain scope, not admin.
  Scopes anonymous_scopes = Scopes().Add(Scope::kSubmit).Add(Scope::kRead).Add(Scope::kCancel);
  absl::Duration reload_interval = absl::Seconds(1);
  absl::Duration jwt_leeway = absl::Seconds(30);
};

// What a call presents.
struct Credentials {
  // Every `authorization` metadata value (normally none or one).
  std::vector<std::string> authorization;
  // The verified client certificate's names, SAN DNS and URI names first,
  // then the CN; empty without a client certificate.
  std::vector<std::string> peer_identities;
};

class Authenticator {
 public:
  // Reads the files. INVALID_ARGUMENT when no source is configured, or
  // --jwt-keys lacks --jwt-issuer or --jwt-audience (or they come without
  // it); the file's error when one does not read or parse. `clock` must
  // outlive the authenticator.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(const AuthOptions& options,
                                                               const Clock& clock);

  absl::StatusOr<Caller> Authenticate(const Credentials& credentials) const;

  // For the start-up log line: "tokens-file(2 tokens, 1 cert), jwt, anonymous".
  std::string Describe() const;
  // Whether the tokens file (as loaded at start) has cert: lines.
  bool has_certificate_lines() const;

 private:
  Authenticator(const AuthOptions& options, const Clock& clock)
      : options_(options), clock_(clock) {}

  absl::StatusOr<Caller> FromToken(absl::string_view token) const;

  const AuthOptions options_;
  const Clock& clock_;
  JwtPolicy jwt_policy_;
  std::unique_ptr<ReloadingFile<TokenTable>> tokens_;
  std::unique_ptr<ReloadingFile<JwtKeySet>> jwt_keys_;
};

// The caller --allow-anonymous admits.
Caller AnonymousCaller(Scopes scopes);

}  // namespace conveyor::orchestrator::auth

#endif  // CONVEYOR_ORCHESTRATOR_AUTH_AUTHENTICATOR_H_
