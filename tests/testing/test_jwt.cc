#include "tests/testing/test_jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace conveyor::testing {
namespace {

// A test helper failing is a broken test environment: stop loudly.
void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "test_jwt: %s failed\n", what);
    std::abort();
  }
}

std::string BigNumParam(EVP_PKEY* key, const char* name, int pad_to = 0) {
  BIGNUM* value = nullptr;
  Check(EVP_PKEY_get_bn_param(key, name, &value) == 1, name);
  std::string bytes(pad_to > 0 ? pad_to : BN_num_bytes(value), '\0');
  if (pad_to > 0) {
    Check(BN_bn2binpad(value, reinterpret_cast<unsigned char*>(bytes.data()), pad_to) == pad_to,
          "BN_bn2binpad");
  } else {
    BN_bn2bin(value, reinterpret_cast<unsigned char*>(bytes.data()));
  }
  BN_free(value);
  return bytes;
}

}  // namespace

std::string Base64Url(absl::string_view bytes) { return absl::WebSafeBase64Escape(bytes); }

TestSigningKey TestSigningKey::Rsa(int bits) {
  EVP_PKEY* key = EVP_RSA_gen(static_cast<unsigned int>(bits));
  Check(key != nullptr, "EVP_RSA_gen");
  return TestSigningKey(std::shared_ptr<evp_pkey_st>(key, EVP_PKEY_free));
}

TestSigningKey TestSigningKey::Ec() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  Check(key != nullptr, "EVP_EC_gen");
  return TestSigningKey(std::shared_ptr<evp_pkey_st>(key, EVP_PKEY_free));
}

std::string TestSigningKey::PublicPem() const {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  Check(PEM_write_bio_PUBKEY(bio.get(), key_.get()) == 1, "PEM_write_bio_PUBKEY");
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

std::string TestSigningKey::Jwk(absl::string_view kid) const {
  const std::string kid_field = kid.empty() ? "" : absl::StrCat(R"("kid":")", kid, R"(",)");
  if (EVP_PKEY_is_a(key_.get(), "RSA")) {
    return absl::StrCat(R"({"kty":"RSA",)", kid_field, R"("use":"sig","n":")",
                        Base64Url(BigNumParam(key_.get(), OSSL_PKEY_PARAM_RSA_N)), R"(","e":")",
                        Base64Url(BigNumParam(key_.get(), OSSL_PKEY_PARAM_RSA_E)), R"("})");
  }
  return absl::StrCat(R"({"kty":"EC","crv":"P-256",)", kid_field, R"("x":")",
                      Base64Url(BigNumParam(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32)),
                      R"(","y":")",
                      Base64Url(BigNumParam(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32)), R"("})");
}

std::string TestSigningKey::Sign(absl::string_view header_json,
                                 absl::string_view payload_json) const {
  const std::string signing_input =
      absl::StrCat(Base64Url(header_json), ".", Base64Url(payload_json));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  Check(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) == 1,
        "EVP_DigestSignInit");
  size_t length = 0;
  const auto* input = reinterpret_cast<const unsigned char*>(signing_input.data());
  Check(EVP_DigestSign(ctx.get(), nullptr, &length, input, signing_input.size()) == 1,
        "EVP_DigestSign");
  std::string signature(length, '\0');
  Check(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                       input, signing_input.size()) == 1,
        "EVP_DigestSign");
  signature.resize(length);
  if (EVP_PKEY_is_a(key_.get(), "EC")) {
    // DER ECDSA-Sig-Value -> JWS's raw r || s.
    const auto* der = reinterpret_cast<const unsigned char*>(signature.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(signature.size()));
    Check(sig != nullptr, "d2i_ECDSA_SIG");
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(sig);
    signature = raw;
  }
  return absl::StrCat(signing_input, ".", Base64Url(signature));
}

std::string Jwks(const std::vector<std::string>& keys) {
  return absl::StrCat(R"({"keys":[)", absl::StrJoin(keys, ","), "]}");
}

std::string UnsignedJwt(absl::string_view header_json, absl::string_view payload_json) {
  return absl::StrCat(Base64Url(header_json), ".", Base64Url(payload_json), ".");
}

std::string Hs256Jwt(absl::string_view header_json, absl::string_view payload_json,
                     absl::string_view secret) {
  const std::string signing_input =
      absl::StrCat(Base64Url(header_json), ".", Base64Url(payload_json));
  unsigned char mac[32];
  unsigned int length = 0;
  Check(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
             mac, &length) != nullptr,
        "HMAC");
  return absl::StrCat(signing_input, ".",
                      Base64Url(absl::string_view(reinterpret_cast<char*>(mac), length)));
}

}  // namespace conveyor::testing
