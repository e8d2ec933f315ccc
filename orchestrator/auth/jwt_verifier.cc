#include "orchestrator/auth/jwt_verifier.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include <cmath>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "orchestrator/auth/scope_check.h"
#include "orchestrator/auth/tokens_file.h"

namespace conveyor::orchestrator::auth {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

absl::Status Refuse(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("JWT ", why));
}

// A claim or header value for a message: not secret, but the caller's
// text, so cut short.
std::string Shown(absl::string_view text) {
  std::string shown(text.substr(0, 64));
  for (char& c : shown) {
    if (c < ' ' || c > '~' || c == '"' || c == '\\') c = '?';
  }
  return shown;
}

absl::StatusOr<Struct> DecodeJson(absl::string_view part, absl::string_view what) {
  std::string json;
  if (!Base64UrlDecode(part, &json)) return Refuse(absl::StrCat(what, " is not base64url"));
  Struct object;
  if (!google::protobuf::util::JsonStringToMessage(json, &object).ok()) {
    return Refuse(absl::StrCat(what, " is not a JSON object"));
  }
  return object;
}

const Value* Field(const Struct& object, const std::string& name) {
  auto it = object.fields().find(name);
  return it == object.fields().end() ? nullptr : &it->second;
}

// A NumericDate claim; nullopt-like: false when absent. Refused when not a
// finite number.
absl::StatusOr<bool> TimeClaim(const Struct& claims, const std::string& name, absl::Time* out) {
  const Value* value = Field(claims, name);
  if (value == nullptr) return false;
  if (value->kind_case() != Value::kNumberValue || !std::isfinite(value->number_value())) {
    return Refuse(absl::StrCat("claim \"", name, "\" is not a number of seconds"));
  }
  *out = absl::FromUnixSeconds(static_cast<int64_t>(value->number_value()));
  return true;
}

// RS256: RSASSA-PKCS1-v1_5 over SHA-256. ES256: ECDSA P-256 over SHA-256,
// the signature as the raw r || s of 32 bytes each (RFC 7518 section 3.4),
// which OpenSSL wants DER-encoded.
bool SignatureVerifies(const JwtKey& key, absl::string_view signed_part,
                       absl::string_view signature) {
  std::string der;
  absl::string_view checked = signature;
  if (key.algorithm == JwtAlgorithm::kEs256) {
    if (signature.size() != 64) return false;
    ECDSA_SIG* sig = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()), 32, nullptr);
    BIGNUM* s =
        BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()) + 32, 32, nullptr);
    if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
      BN_free(r);
      BN_free(s);
      ECDSA_SIG_free(sig);
      return false;
    }
    unsigned char* encoded = nullptr;
    const int length = i2d_ECDSA_SIG(sig, &encoded);
    ECDSA_SIG_free(sig);
    if (length <= 0) return false;
    der.assign(reinterpret_cast<char*>(encoded), static_cast<size_t>(length));
    OPENSSL_free(encoded);
    checked = der;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.key.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(
             ctx.get(), reinterpret_cast<const unsigned char*>(checked.data()), checked.size(),
             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
}

}  // namespace

bool LooksLikeJwt(absl::string_view token) {
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return false;
  for (absl::string_view part : parts) {
    if (part.empty()) return false;
  }
  return true;
}

absl::StatusOr<Caller> VerifyJwt(absl::string_view token, const JwtKeySet& keys,
                                 const JwtPolicy& policy, absl::Time now) {
  if (!LooksLikeJwt(token)) return Refuse("is not three dot-separated base64url parts");
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  absl::StatusOr<Struct> header = DecodeJson(parts[0], "header");
  if (!header.ok()) return header.status();

  const Value* alg = Field(*header, "alg");
  if (alg == nullptr || alg->kind_case() != Value::kStringValue) {
    return Refuse("header has no \"alg\"");
  }
  JwtAlgorithm algorithm;
  if (alg->string_value() == "RS256") {
    algorithm = JwtAlgorithm::kRs256;
  } else if (alg->string_value() == "ES256") {
    algorithm = JwtAlgorithm::kEs256;
  } else if (absl::EqualsIgnoreCase(alg->string_value(), "none")) {
    return Refuse("alg \"none\" is refused: tokens must be signed (RS256 or ES256)");
  } else if (absl::StartsWith(alg->string_value(), "HS")) {
    return Refuse(absl::StrCat("alg \"", Shown(alg->string_value()),
                               "\" is refused: shared-secret tokens are not accepted; sign "
                               "with RS256 or ES256"));
  } else {
    return Refuse(absl::StrCat("alg \"", Shown(alg->string_value()),
                               "\" is not supported; want RS256 or ES256"));
  }
  if (Field(*header, "crit") != nullptr) return Refuse("header \"crit\" is not supported");
  std::string kid;
  if (const Value* value = Field(*header, "kid"); value != nullptr) {
    if (value->kind_case() != Value::kStringValue) return Refuse("header \"kid\" is not a string");
    kid = value->string_value();
  }

  std::vector<const JwtKey*> candidates;
  bool kid_known = false;
  for (const JwtKey& key : keys.keys) {
    if (!kid.empty() && !key.kid.empty() && key.kid != kid) continue;
    kid_known = true;
    if (key.algorithm == algorithm) candidates.push_back(&key);
  }
  if (!kid.empty() && !kid_known) {
    return Refuse(absl::StrCat("kid \"", Shown(kid), "\" is not in --jwt-keys"));
  }
  if (candidates.empty()) {
    return Refuse(absl::StrCat("is ", JwtAlgorithmName(algorithm), " but --jwt-keys has no ",
                               algorithm == JwtAlgorithm::kRs256 ? "RSA" : "EC P-256", " key",
                               kid.empty() ? "" : " of that kid"));
  }
  std::string signature;
  if (!Base64UrlDecode(parts[2], &signature)) return Refuse("signature is not base64url");
  const absl::string_view signed_part(token.data(), parts[0].size() + 1 + parts[1].size());
  bool verified = false;
  for (const JwtKey* key : candidates) {
    if (SignatureVerifies(*key, signed_part, signature)) {
      verified = true;
      break;
    }
  }
  if (!verified) return Refuse("signature does not verify with --jwt-keys");

  // Only signed claims are read from here on.
  absl::StatusOr<Struct> claims = DecodeJson(parts[1], "payload");
  if (!claims.ok()) return claims.status();
  absl::Time exp, nbf, iat;
  absl::StatusOr<bool> has_exp = TimeClaim(*claims, "exp", &exp);
  if (!has_exp.ok()) return has_exp.status();
  if (!*has_exp) return Refuse("has no \"exp\" claim; tokens must expire");
  if (now >= exp + policy.leeway) {
    return Refuse(absl::StrCat("expired ",
                               absl::FormatDuration(absl::Trunc(now - exp, absl::Seconds(1))),
                               " ago (", absl::FormatDuration(policy.leeway), " leeway)"));
  }
  absl::StatusOr<bool> has_nbf = TimeClaim(*claims, "nbf", &nbf);
  if (!has_nbf.ok()) return has_nbf.status();
  if (*has_nbf && nbf > now + policy.leeway) {
    return Refuse(absl::StrCat("is not valid for another ",
                               absl::FormatDuration(absl::Trunc(nbf - now, absl::Seconds(1))),
                               " (nbf)"));
  }
  absl::StatusOr<bool> has_iat = TimeClaim(*claims, "iat", &iat);
  if (!has_iat.ok()) return has_iat.status();
  if (*has_iat && iat > now + policy.leeway) return Refuse("is issued in the future (iat)");

  const Value* iss = Field(*claims, "iss");
  if (iss == nullptr || iss->kind_case() != Value::kStringValue ||
      iss->string_value() != policy.issuer) {
    return Refuse(absl::StrCat("issuer is not --jwt-issuer \"", Shown(policy.issuer), "\""));
  }
  bool audience_ok = false;
  if (const Value* aud = Field(*claims, "aud"); aud != nullptr) {
    if (aud->kind_case() == Value::kStringValue) {
      audience_ok = aud->string_value() == policy.audience;
    } else if (aud->kind_case() == Value::kListValue) {
      for (const Value& one : aud->list_value().values()) {
        audience_ok |=
            one.kind_case() == Value::kStringValue && one.string_value() == policy.audience;
      }
    }
  }
  if (!audience_ok) {
    return Refuse(
        absl::StrCat("audience does not include --jwt-audience \"", Shown(policy.audience), "\""));
  }

  Caller caller;
  const Value* sub = Field(*claims, "sub");
  if (sub == nullptr || sub->kind_case() != Value::kStringValue ||
      !IsPrincipalName(sub->string_value())) {
    return Refuse("\"sub\" claim: want 1..256 printable characters without spaces or quotes");
  }
  caller.principal = sub->string_value();
  const Value* tenant = Field(*claims, "tenant");
  if (tenant == nullptr || tenant->kind_case() != Value::kStringValue ||
      !IsTenantName(tenant->string_value())) {
    return Refuse("\"tenant\" claim: want a tenant name (1..64 of [A-Za-z0-9_-]) or *");
  }
  caller.tenant = tenant->string_value();
  if (const Value* scope = Field(*claims, "scope"); scope != nullptr) {
    if (scope->kind_case() != Value::kStringValue) return Refuse("\"scope\" is not a string");
    caller.scopes = KnownScopes(scope->string_value(), ' ');
  } else if (const Value* scp = Field(*claims, "scp"); scp != nullptr) {
    if (scp->kind_case() == Value::kStringValue) {
      caller.scopes = KnownScopes(scp->string_value(), ' ');
    } else if (scp->kind_case() == Value::kListValue) {
      for (const Value& one : scp->list_value().values()) {
        if (one.kind_case() != Value::kStringValue) return Refuse("\"scp\" has a non-string");
        if (absl::StatusOr<Scope> known = ParseScope(one.string_value()); known.ok()) {
          caller.scopes.Add(*known);
        }
      }
    } else {
      return Refuse("\"scp\" is not an array of strings");
    }
  }
  return caller;
}

}  // namespace conveyor::orchestrator::auth
