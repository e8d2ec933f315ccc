#include "stages/webhook/webhook_service.h"

#include "absl/strings/str_cat.h"

namespace conveyor::stages::webhook {

absl::Status WebhookService::Work(const v1::WebhookRequest& req, v1::WebhookResponse& resp,
                                  CallScope& call) const {
  WebhookStats stats;
  absl::Status status = sender_.Deliver(req, resp, call.cancelled, call.deadline, stats);
  if (!stats.delivery_id.empty()) {
    call.log_fields.emplace_back("webhook_id", stats.delivery_id);
  }
  if (stats.http_status != 0) {
    call.log_fields.emplace_back("http_status", absl::StrCat(stats.http_status));
  }
  return status;
}

}  // namespace conveyor::stages::webhook
