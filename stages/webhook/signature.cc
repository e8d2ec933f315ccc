#include "stages/webhook/signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace conveyor::stages::webhook {

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
  const std::string signed_content = absl::StrCat(id, ".", timestamp, ".", body);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(signed_content.data()), signed_content.size(), digest,
       &digest_length);
  return absl::StrCat("v1,", absl::Base64Escape(absl::string_view(
                                 reinterpret_cast<const char*>(digest), digest_length)));
}

}  // namespace conveyor::stages::webhook
