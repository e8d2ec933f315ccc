// Verifies a JWT bearer token (RFC 7519, compact JWS) and makes it a Caller.
//
// Accepted: alg RS256 or ES256 (never "none", never HS*: a shared secret
// would let anyone holding the verification key mint tokens), signed by a
// key of the set (its `kid` selects among the JWKS keys; PEM keys have
// none and are tried for any kid), `iss` == issuer, `aud` (a string or an
// array) containing audience, `exp` required and not passed, `nbf` and
// `iat` (when present) not in the future, each with `leeway` for clock
// skew. No `crit` header (nothing this verifier would understand).
// Caller: principal `sub`, tenant the `tenant` claim (a tenant name or
// "*"), scopes from `scope` (space-separated) or `scp` (an array); scope
// names this server does not know are skipped.
//
// Every refusal is UNAUTHENTICATED with a message saying what is wrong
// ("JWT expired 42s ago", "JWT signature does not verify", "JWT kid \"k2\"
// is not in --jwt-keys"), never the token. Pure; thread-safe.
#ifndef CONVEYOR_ORCHESTRATOR_AUTH_JWT_VERIFIER_H_
#define CONVEYOR_ORCHESTRATOR_AUTH_JWT_VERIFIER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "orchestrator/auth/jwt_keys.h"
#include "orchestrator/caller.h"

namespace conveyor::orchestrator::auth {

struct JwtPolicy {
  std::string issuer;    // --jwt-issuer
  std::string audience;  // --jwt-audience
  absl::Duration leeway = absl::Seconds(30);
};

// True if `token` has the shape of a compact JWS: three non-empty parts
// separated by dots.
bool LooksLikeJwt(absl::string_view token);

absl::StatusOr<Caller> VerifyJwt(absl::string_view token, const JwtKeySet& keys,
                                 const JwtPolicy& policy, absl::Time now);

}  // namespace conveyor::orchestrator::auth

#endif  // CONVEYOR_ORCHESTRATOR_AUTH_JWT_VERIFIER_H_
