// Standard Webhooks signing (https://www.standardwebhooks.com/):
//   webhook-signature: v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>
// The shared secret is written "whsec_<base64 key>"; a secret without the
// prefix is used as raw key bytes, as the reference libraries allow.
#ifndef CONVEYOR_STAGES_WEBHOOK_SIGNATURE_H_
#define CONVEYOR_STAGES_WEBHOOK_SIGNATURE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace conveyor::stages::webhook {

// The signing key of `secret`. INVALID_ARGUMENT if it is empty, or has the
// whsec_ prefix but no valid base64 after it. The message never contains
// the secret.
absl::StatusOr<std::string> ParseWebhookSecret(absl::string_view secret);

// "v1,<base64 signature>" of one message.
std::string SignWebhook(absl::string_view key, absl::string_view id, int64_t timestamp,
                        absl::string_view body);

}  // namespace conveyor::stages::webhook

#endif  // CONVEYOR_STAGES_WEBHOOK_SIGNATURE_H_
