// The public keys JWTs are verified with (--jwt-keys): a file of PEM blocks
// (PUBLIC KEY or CERTIFICATE, one or more) or a JWKS document
// ({"keys": [{"kty": "RSA", "kid": ..., "n": ..., "e": ...},
//            {"kty": "EC", "crv": "P-256", "x": ..., "y": ...}]}).
// RSA keys verify RS256, P-256 keys ES256; nothing else is taken. JWKS keys
// with "use": "enc" and of other kinds (oct, OKP, other curves) are skipped,
// as an identity provider's JWKS may carry them; a file without a single
// usable key is refused. A private key in the file is refused: this server
// must never hold the signing key.
#ifndef CONVEYOR_ORCHESTRATOR_AUTH_JWT_KEYS_H_
#define CONVEYOR_ORCHESTRATOR_AUTH_JWT_KEYS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct evp_pkey_st;

namespace conveyor::orchestrator::auth {

enum class JwtAlgorithm { kRs256, kEs256 };

// "RS256" or "ES256".
absl::string_view JwtAlgorithmName(JwtAlgorithm algorithm);

struct JwtKey {
  // The JWKS "kid"; empty for a PEM key, which any token's kid may select.
  std::string kid;
  JwtAlgorithm algorithm = JwtAlgorithm::kRs256;
  std::shared_ptr<evp_pkey_st> key;  // EVP_PKEY, freed with EVP_PKEY_free
};

// Immutable once parsed; thread-safe (EVP_PKEY verification does not
// modify the key).
struct JwtKeySet {
  std::vector<JwtKey> keys;
};

// Parses PEM or (text starting with '{') JWKS. `path` is only for messages.
// INVALID_ARGUMENT naming what is wrong.
absl::StatusOr<JwtKeySet> ParseJwtKeys(absl::string_view text, absl::string_view path);

// Reads (public keys: no secrecy checks) and parses `path`.
absl::StatusOr<JwtKeySet> ReadJwtKeys(const std::string& path);

// base64url without padding (RFC 7515 section 2); false on any other byte.
bool Base64UrlDecode(absl::string_view text, std::string* out);

}  // namespace conveyor::orchestrator::auth

#endif  // CONVEYOR_ORCHESTRATOR_AUTH_JWT_KEYS_H_
