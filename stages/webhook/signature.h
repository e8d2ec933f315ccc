// Standard Webhooks signing (https://www.standardwebhooks.com/):
//   webhook-signature: v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>
// During a secret rotation a delivery carries one signature per active
// secret, space-separated ("v1,<a> v1,<b>"), as the specification allows, so
// receivers holding either secret verify it.
//
// A secret is written "whsec_<base64 key>"; a secret without the prefix is
// used as raw key bytes, as the reference libraries allow.
#ifndef CONVEYOR_STAGES_WEBHOOK_SIGNATURE_H_
#define CONVEYOR_STAGES_WEBHOOK_SIGNATURE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace conveyor::stages::webhook {

// The signing key of `secret`. INVALID_ARGUMENT if it is empty, or has the
// whsec_ prefix but no valid base64 after it. The message never contains
// the secret.
absl::StatusOr<std::string> ParseWebhookSecret(absl::string_view secret);

// "v1,<base64 signature>" of one message.
std::string SignWebhook(absl::string_view key, absl::string_view id, int64_t timestamp,
                        absl::string_view body);

// The webhook-signature header for `keys` (ParseWebhookSecret's results):
// SignWebhook of each, joined by single spaces, in the order given.
std::string SignWebhookWithAll(absl::Span<const std::string> keys, absl::string_view id,
                               int64_t timestamp, absl::string_view body);

// The three headers a receiver verifies, as received.
struct WebhookHeaders {
  std::string id;         // webhook-id
  std::string timestamp;  // webhook-timestamp, unix seconds
  std::string signature;  // webhook-signature, "v1,<sig>[ v1,<sig>...]"
};

// The reference receiver's check: OK if any v1 signature of the header
// matches the HMAC of any of `secrets` ("whsec_..." or raw, as the receiver
// stores them), compared in constant time, and the timestamp lies within
// `tolerance` of `now` (either side: replays of old deliveries fail).
// INVALID_ARGUMENT for a missing header or a timestamp that is no number,
// or when no secret parses; UNAUTHENTICATED for a timestamp outside the
// tolerance or no matching signature. Messages never contain a secret.
absl::Status VerifyWebhook(absl::Span<const std::string> secrets, const WebhookHeaders& headers,
                           absl::string_view body, absl::Duration tolerance,
                           absl::Time now = absl::Now());

}  // namespace conveyor::stages::webhook

#endif  // CONVEYOR_STAGES_WEBHOOK_SIGNATURE_H_
