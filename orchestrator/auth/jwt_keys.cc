#include "orchestrator/auth/jwt_keys.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace conveyor::orchestrator::auth {
namespace {

constexpr size_t kMaxKeysFileBytes = 1 << 20;

using google::protobuf::Struct;
using google::protobuf::Value;

std::shared_ptr<evp_pkey_st> Own(EVP_PKEY* key) {
  return std::shared_ptr<evp_pkey_st>(key, EVP_PKEY_free);
}

// RS256 for an RSA key of at least 2048 bits, ES256 for a P-256 key.
absl::StatusOr<JwtAlgorithm> AlgorithmOf(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "RSA")) {
    if (EVP_PKEY_get_bits(key) < 2048) {
      return absl::InvalidArgumentError(
          absl::StrCat("an RSA key of ", EVP_PKEY_get_bits(key), " bits; want at least 2048"));
    }
    return JwtAlgorithm::kRs256;
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {0};
    size_t length = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &length) == 1 &&
        (absl::string_view(group) == "prime256v1" || absl::string_view(group) == "P-256")) {
      return JwtAlgorithm::kEs256;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("an EC key on curve ", group[0] ? group : "?", "; want P-256 (ES256)"));
  }
  return absl::InvalidArgumentError("a key that is neither RSA nor EC P-256");
}

absl::StatusOr<JwtKeySet> ParsePem(absl::string_view text, absl::string_view path) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), BIO_free);
  if (bio == nullptr) return absl::ResourceExhaustedError("out of memory");
  JwtKeySet set;
  for (int block = 1;; ++block) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long length = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &length) != 1) break;
    const std::string type = name;
    OPENSSL_free(name);
    OPENSSL_free(header);
    std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(
        data, [](unsigned char* p) { OPENSSL_free(p); });
    const auto fail = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": PEM block ", block, " (", type, "): ", why));
    };
    const unsigned char* p = data;
    EVP_PKEY* key = nullptr;
    if (type == "PUBLIC KEY") {
      key = d2i_PUBKEY(nullptr, &p, length);
    } else if (type == "CERTIFICATE") {
      X509* cert = d2i_X509(nullptr, &p, length);
      if (cert != nullptr) {
        key = X509_get_pubkey(cert);
        X509_free(cert);
      }
    } else if (absl::StrContains(type, "PRIVATE KEY")) {
      return fail("a private key; give only the public key (openssl pkey -pubout)");
    } else {
      return fail("want PUBLIC KEY or CERTIFICATE");
    }
    if (key == nullptr) return fail("does not parse");
    std::shared_ptr<evp_pkey_st> owned_key = Own(key);
    absl::StatusOr<JwtAlgorithm> algorithm = AlgorithmOf(key);
    if (!algorithm.ok()) return fail(algorithm.status().message());
    set.keys.push_back(JwtKey{"", *algorithm, std::move(owned_key)});
  }
  if (set.keys.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no PEM public key (-----BEGIN PUBLIC KEY-----) and no JWKS"));
  }
  return set;
}

std::string StringField(const Struct& object, const std::string& name) {
  auto it = object.fields().find(name);
  if (it == object.fields().end() || it->second.kind_case() != Value::kStringValue) return "";
  return it->second.string_value();
}

absl::StatusOr<std::shared_ptr<evp_pkey_st>> FromParams(const char* type, OSSL_PARAM_BLD* build) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(build);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* key = nullptr;
  const bool ok = params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1 &&
                  EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  if (!ok || key == nullptr) return absl::InvalidArgumentError("not a valid public key");
  return Own(key);
}

absl::StatusOr<std::shared_ptr<evp_pkey_st>> RsaKey(const Struct& jwk) {
  std::string n, e;
  if (!Base64UrlDecode(StringField(jwk, "n"), &n) || n.empty() ||
      !Base64UrlDecode(StringField(jwk, "e"), &e) || e.empty()) {
    return absl::InvalidArgumentError("want base64url \"n\" and \"e\"");
  }
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                           static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                           static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* build = OSSL_PARAM_BLD_new();
  absl::StatusOr<std::shared_ptr<evp_pkey_st>> key =
      absl::InvalidArgumentError("not a valid RSA key");
  if (bn_n != nullptr && bn_e != nullptr && build != nullptr &&
      OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
      OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1) {
    key = FromParams("RSA", build);
  }
  OSSL_PARAM_BLD_free(build);
  BN_free(bn_n);
  BN_free(bn_e);
  return key;
}

absl::StatusOr<std::shared_ptr<evp_pkey_st>> EcKey(const Struct& jwk) {
  std::string x, y;
  if (!Base64UrlDecode(StringField(jwk, "x"), &x) || x.size() != 32 ||
      !Base64UrlDecode(StringField(jwk, "y"), &y) || y.size() != 32) {
    return absl::InvalidArgumentError("want base64url \"x\" and \"y\" of 32 bytes each");
  }
  // The uncompressed point: 0x04 || x || y.
  const std::string point = absl::StrCat("\x04", x, y);
  OSSL_PARAM_BLD* build = OSSL_PARAM_BLD_new();
  absl::StatusOr<std::shared_ptr<evp_pkey_st>> key =
      absl::InvalidArgumentError("not a valid P-256 key");
  if (build != nullptr &&
      OSSL_PARAM_BLD_push_utf8_string(build, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(build, OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) == 1) {
    key = FromParams("EC", build);
  }
  OSSL_PARAM_BLD_free(build);
  return key;
}

absl::StatusOr<JwtKeySet> ParseJwks(absl::string_view text, absl::string_view path) {
  Struct document;
  if (!google::protobuf::util::JsonStringToMessage(std::string(text), &document).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON (want a JWKS)"));
  }
  auto keys = document.fields().find("keys");
  if (keys == document.fields().end() || keys->second.kind_case() != Value::kListValue) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": a JWKS wants a \"keys\" array"));
  }
  JwtKeySet set;
  const auto& entries = keys->second.list_value().values();
  for (int index = 0; index < entries.size(); ++index) {
    const Value& entry = entries[index];
    const auto fail = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": keys[", index, "]: ", why));
    };
    if (entry.kind_case() != Value::kStructValue) return fail("want an object");
    const Struct& jwk = entry.struct_value();
    const std::string kty = StringField(jwk, "kty");
    const std::string use = StringField(jwk, "use");
    const std::string alg = StringField(jwk, "alg");
    if (StringField(jwk, "d") != "") {
      return fail("a private key (\"d\"); give only the public key");
    }
    if (!use.empty() && use != "sig") continue;
    absl::StatusOr<std::shared_ptr<evp_pkey_st>> key;
    JwtAlgorithm algorithm;
    if (kty == "RSA" && (alg.empty() || alg == "RS256")) {
      key = RsaKey(jwk);
      algorithm = JwtAlgorithm::kRs256;
    } else if (kty == "EC" && StringField(jwk, "crv") == "P-256" &&
               (alg.empty() || alg == "ES256")) {
      key = EcKey(jwk);
      algorithm = JwtAlgorithm::kEs256;
    } else {
      continue;  // another kind of key: not one this server verifies with
    }
    if (!key.ok()) return fail(key.status().message());
    if (absl::StatusOr<JwtAlgorithm> checked = AlgorithmOf(key->get()); !checked.ok()) {
      return fail(checked.status().message());
    }
    set.keys.push_back(JwtKey{StringField(jwk, "kid"), algorithm, *std::move(key)});
  }
  if (set.keys.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no RS256 (RSA) or ES256 (EC P-256) signing key in the JWKS"));
  }
  return set;
}

}  // namespace

absl::string_view JwtAlgorithmName(JwtAlgorithm algorithm) {
  return algorithm == JwtAlgorithm::kRs256 ? "RS256" : "ES256";
}

bool Base64UrlDecode(absl::string_view text, std::string* out) {
  for (char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  if (text.size() % 4 == 1) return false;
  return absl::WebSafeBase64Unescape(text, out);
}

absl::StatusOr<JwtKeySet> ParseJwtKeys(absl::string_view text, absl::string_view path) {
  if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(text), "{")) return ParseJwks(text, path);
  return ParsePem(text, path);
}

absl::StatusOr<JwtKeySet> ReadJwtKeys(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read \"", path, "\""));
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > kMaxKeysFileBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", path, "\" is over ", kMaxKeysFileBytes, " bytes"));
  }
  return ParseJwtKeys(text.str(), path);
}

}  // namespace conveyor::orchestrator::auth
