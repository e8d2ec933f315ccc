// Signing keys and JWTs made at test time with OpenSSL's EVP API, for the
// tests of the orchestrator's JWT verification (orchestrator/auth/):
//
//   TestSigningKey key = TestSigningKey::Rsa();         // or ::Ec() (P-256)
//   std::string pem = key.PublicPem();                  // a --jwt-keys file
//   std::string jwks = Jwks({key.Jwk("k1")});            // or a JWKS
//   std::string token = key.Sign(R"({"alg":"RS256","kid":"k1"})",
//                                R"({"sub":"alice","exp":...})");
//
// Nothing is committed: every key is new in each test run.
#ifndef CONVEYOR_TESTS_TESTING_TEST_JWT_H_
#define CONVEYOR_TESTS_TESTING_TEST_JWT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

struct evp_pkey_st;

namespace conveyor::testing {

class TestSigningKey {
 public:
  static TestSigningKey Rsa(int bits = 2048);  // RS256
  static TestSigningKey Ec();                  // ES256 (P-256)

  // "-----BEGIN PUBLIC KEY-----..." of the public half.
  std::string PublicPem() const;
  // The public half as one JWKS key object, with `kid` (none if empty).
  std::string Jwk(absl::string_view kid) const;
  // The compact JWS of `header_json`.`payload_json`, signed with this key:
  // RS256 (PKCS#1 v1.5, SHA-256) for RSA, ES256 (raw r||s) for EC,
  // whatever `alg` the header claims.
  std::string Sign(absl::string_view header_json, absl::string_view payload_json) const;

 private:
  explicit TestSigningKey(std::shared_ptr<evp_pkey_st> key) : key_(std::move(key)) {}
  std::shared_ptr<evp_pkey_st> key_;
};

// {"keys": [<each of jwks>]}.
std::string Jwks(const std::vector<std::string>& keys);

// base64url without padding.
std::string Base64Url(absl::string_view bytes);

// An "alg": "none" token: header.payload. (empty signature).
std::string UnsignedJwt(absl::string_view header_json, absl::string_view payload_json);

// An HS256 token signed with `secret` (HMAC-SHA256).
std::string Hs256Jwt(absl::string_view header_json, absl::string_view payload_json,
                     absl::string_view secret);

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_TEST_JWT_H_
