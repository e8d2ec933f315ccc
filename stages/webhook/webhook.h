// The webhook stage's logic (no gRPC): POST a signed JSON envelope of the
// chain report to a URL, with the Standard Webhooks headers.
//
// The body:
//   {"type":"chain.report","timestamp":"2026-11-26T11:20:00.123Z",
//    "data":<ChainReport in proto3 JSON (lowerCamelCase names)>}
// The headers: webhook-id (DeliveryId(context): the same on every retry of a
// step, so receivers de-duplicate), webhook-timestamp (unix seconds of this
// attempt) and webhook-signature (signature.h): one signature per active
// secret of the chain's tenant (context.tenant; "default" for a direct call
// without one), from the secrets file (webhook_secrets.h).
//
// Codes (besides HttpClient's, see stages/common/http_client.h; redirects
// are not followed):
//  OK                   2xx: delivered
//  UNAVAILABLE          408, 429, 5xx, 1xx; connection failures (retryable)
//  DEADLINE_EXCEEDED    timeouts (retryable)
//  FAILED_PRECONDITION  any other 3xx/4xx: the receiver refuses this delivery,
//                       a retry would be refused too; the message has the status;
//                       or the secrets file has no secret for the tenant
//                       (reason NO_TENANT_SECRET, the message names the tenant)
//  INVALID_ARGUMENT     spec.url malformed, not http(s) or over 8 KiB;
//                       context.chain not "chains/<id>" with a safe id
//                       (reason INVALID_CHAIN_NAME); context.tenant not a
//                       tenant name (INVALID_TENANT_NAME; the unary runner
//                       checks both, common/step_context.h)
//  PERMISSION_DENIED    guard refused the address (DESTINATION_BLOCKED)
#ifndef CONVEYOR_STAGES_WEBHOOK_WEBHOOK_H_
#define CONVEYOR_STAGES_WEBHOOK_WEBHOOK_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "conveyor/v1/stages.pb.h"
#include "stages/common/http_client.h"
#include "stages/webhook/webhook_secrets.h"

namespace conveyor::stages::webhook {

inline constexpr absl::string_view kEventType = "chain.report";
// ErrorInfo reason of a non-2xx answer.
inline constexpr absl::string_view kHttpStatus = "HTTP_STATUS";

// "msg_<chain id>_<step index>" from the step context; a call without a chain
// gets "msg_adhoc_<32 random hex digits>". The context must have passed
// ChainIdOfContext (common/step_context.h); Deliver checks it.
std::string DeliveryId(const v1::StepContext& context);

// The envelope above, with `now` as its timestamp.
absl::StatusOr<std::string> BuildWebhookBody(const v1::ChainReport& report, absl::Time now);

// OK for 2xx; otherwise the code of the table above.
absl::Status WebhookStatusFromHttp(int http_status, absl::string_view delivery_id);

struct WebhookStats {
  std::string delivery_id;
  int http_status = 0;
};

class WebhookSender {
 public:
  // `client` and `secrets` must outlive the sender. `now` is the clock of
  // the envelope and webhook-timestamp. Thread-safe.
  WebhookSender(const HttpClient& client, const WebhookSecrets& secrets,
                std::function<absl::Time()> now = &absl::Now)
      : client_(client), secrets_(secrets), now_(std::move(now)) {}

  absl::Status Deliver(const v1::WebhookRequest& request, v1::WebhookResponse& response,
                       const std::function<bool()>& cancelled, absl::Time deadline,
                       WebhookStats& stats) const;

 private:
  const HttpClient& client_;
  const WebhookSecrets& secrets_;
  const std::function<absl::Time()> now_;
};

}  // namespace conveyor::stages::webhook

#endif  // CONVEYOR_STAGES_WEBHOOK_WEBHOOK_H_
