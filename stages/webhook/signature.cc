#include "stages/webhook/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace conveyor::stages::webhook {
namespace {

// The raw HMAC-SHA256 of the signed content.
std::string Mac(absl::string_view key, absl::string_view signed_content) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(signed_content.data()), signed_content.size(), digest,
       &digest_length);
  return std::string(reinterpret_cast<const char*>(digest), digest_length);
}

std::string SignedContent(absl::string_view id, absl::string_view timestamp,
                          absl::string_view body) {
  return absl::StrCat(id, ".", timestamp, ".", body);
}

}  // namespace

absl::StatusOr<std::string> ParseWebhookSecret(absl::string_view secret) {
  constexpr absl::string_view kPrefix = "whsec_";
  if (secret.empty()) return absl::InvalidArgumentError("the webhook secret is empty");
  if (!absl::StartsWith(secret, kPrefix)) return std::string(secret);
  std::string key;
  if (!absl::Base64Unescape(secret.substr(kPrefix.size()), &key) || key.empty()) {
    return absl::InvalidArgumentError(
        "the webhook secret starts with whsec_ but what follows is not base64");
  }
  return key;
}

std::string SignWebhook(absl::string_view key, absl::string_view id, int64_t timestamp,
                        absl::string_view body) {
  return absl::StrCat(
      "v1,", absl::Base64Escape(Mac(key, SignedContent(id, absl::StrCat(timestamp), body))));
}

std::string SignWebhookWithAll(absl::Span<const std::string> keys, absl::string_view id,
                               int64_t timestamp, absl::string_view body) {
  std::vector<std::string> signatures;
  signatures.reserve(keys.size());
  for (const std::string& key : keys) signatures.push_back(SignWebhook(key, id, timestamp, body));
  return absl::StrJoin(signatures, " ");
}

absl::Status VerifyWebhook(absl::Span<const std::string> secrets, const WebhookHeaders& headers,
                           absl::string_view body, absl::Duration tolerance, absl::Time now) {
  if (headers.id.empty() || headers.timestamp.empty() || headers.signature.empty()) {
    return absl::InvalidArgumentError(
        "want the webhook-id, webhook-timestamp and webhook-signature headers");
  }
  int64_t timestamp = 0;
  if (!absl::SimpleAtoi(headers.timestamp, &timestamp)) {
    return absl::InvalidArgumentError("webhook-timestamp is not a number of unix seconds");
  }
  if (absl::AbsDuration(now - absl::FromUnixSeconds(timestamp)) > tolerance) {
    return absl::UnauthenticatedError(absl::StrCat("webhook-timestamp is more than ",
                                                   absl::FormatDuration(tolerance), " from now"));
  }
  std::vector<std::string> keys;
  for (const std::string& secret : secrets) {
    absl::StatusOr<std::string> key = ParseWebhookSecret(secret);
    if (key.ok()) keys.push_back(*std::move(key));
  }
  if (keys.empty()) return absl::InvalidArgumentError("no usable webhook secret to verify with");
  const std::string content = SignedContent(headers.id, headers.timestamp, body);
  std::vector<std::string> expected;
  for (const std::string& key : keys) expected.push_back(Mac(key, content));
  // Check every candidate against every key, without stopping early, so the
  // time taken says nothing about which part matched.
  bool matched = false;
  for (absl::string_view candidate : absl::StrSplit(headers.signature, ' ', absl::SkipEmpty())) {
    if (!absl::ConsumePrefix(&candidate, "v1,")) continue;  // other schemes (v1a) are not ours
    std::string mac;
    if (!absl::Base64Unescape(candidate, &mac)) continue;
    for (const std::string& want : expected) {
      if (mac.size() == want.size() && CRYPTO_memcmp(mac.data(), want.data(), want.size()) == 0) {
        matched = true;
      }
    }
  }
  if (!matched) {
    return absl::UnauthenticatedError("no webhook-signature matches any of the secrets");
  }
  return absl::OkStatus();
}

}  // namespace conveyor::stages::webhook
