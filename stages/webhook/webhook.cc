#include "stages/webhook/webhook.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "stages/common/ssrf_guard.h"
#include "common/status_details.h"
#include "common/step_context.h"
#include "common/step_specs.h"
#include "stages/webhook/signature.h"

namespace conveyor::stages::webhook {
namespace {

// The receiver's answer is only informative; keep little of it.
constexpr int64_t kMaxResponseBytes = 64 << 10;

}  // namespace

std::string DeliveryId(const v1::StepContext& context) {
  absl::string_view chain = context.chain();
  if (absl::StartsWith(chain, "chains/")) chain.remove_prefix(7);
  if (chain.empty()) {
    absl::BitGen random;
    return absl::StrFormat("msg_adhoc_%016x%016x", absl::Uniform<uint64_t>(random),
                           absl::Uniform<uint64_t>(random));
  }
  return absl::StrCat("msg_", chain, "_", context.step_index());
}

absl::StatusOr<std::string> BuildWebhookBody(const v1::ChainReport& report, absl::Time now) {
  std::string data;
  google::protobuf::util::JsonPrintOptions options;
  auto printed = google::protobuf::util::MessageToJsonString(report, &data, options);
  if (!printed.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print the report as JSON: ", printed.ToString()));
  }
  // RFC 3339 in UTC with milliseconds: nothing in it needs JSON escaping.
  const std::string timestamp =
      absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", now, absl::UTCTimeZone());
  return absl::StrCat(R"({"type":")", kEventType, R"(","timestamp":")", timestamp, R"(","data":)",
                      data, "}");
}

absl::Status WebhookStatusFromHttp(int http_status, absl::string_view delivery_id) {
  if (http_status >= 200 && http_status <= 299) return absl::OkStatus();
  const bool retryable = http_status == 408 || http_status == 429 ||
                         (http_status >= 500 && http_status <= 599) || http_status < 200;
  absl::Status status(
      retryable ? absl::StatusCode::kUnavailable : absl::StatusCode::kFailedPrecondition,
      absl::StrCat("webhook receiver answered HTTP ", http_status, " to delivery ", delivery_id,
                   retryable ? "" : "; it refuses this delivery, so it is not retried"));
  return WithErrorReason(
      std::move(status), kHttpStatus,
      {{"http_status", absl::StrCat(http_status)}, {"webhook_id", std::string(delivery_id)}});
}

absl::Status WebhookSender::Deliver(const v1::WebhookRequest& request,
                                    v1::WebhookResponse& response,
                                    const std::function<bool()>& cancelled, absl::Time deadline,
                                    WebhookStats& stats) const {
  // The orchestrator's rules, then libcurl's stricter parse of the URL.
  if (absl::Status valid = CheckWebhookSpec("spec", request.spec()); !valid.ok()) return valid;
  if (absl::Status valid = ValidateHttpUrl("spec.url", request.spec().url()); !valid.ok()) {
    return valid;
  }
  // The chain goes into the webhook-id header: refuse anything but a plain
  // chain name before it gets near a header (CR/LF would inject fields).
  if (absl::StatusOr<std::string> id = ChainIdOfContext(request.context()); !id.ok()) {
    return id.status();
  }
  // The tenant's secrets, before any work: without one nothing can be signed.
  absl::StatusOr<std::vector<std::string>> keys = secrets_.KeysFor(request.context().tenant());
  if (!keys.ok()) return keys.status();
  const absl::Time now = now_();
  absl::StatusOr<std::string> body = BuildWebhookBody(request.report(), now);
  if (!body.ok()) return body.status();
  stats.delivery_id = DeliveryId(request.context());
  const int64_t timestamp = absl::ToUnixSeconds(now);

  HttpRequest http;
  http.method = "POST";
  http.url = request.spec().url();
  http.url_field = "spec.url";
  http.follow_redirects = false;  // a signed delivery goes where it was sent, or fails
  http.max_response_bytes = kMaxResponseBytes;
  http.truncate_response = true;
  http.deadline = deadline;
  http.cancelled = cancelled;
  http.headers = {
      {"Content-Type", "application/json"},
      {"webhook-id", stats.delivery_id},
      {"webhook-timestamp", absl::StrCat(timestamp)},
      {"webhook-signature", SignWebhookWithAll(*keys, stats.delivery_id, timestamp, *body)},
  };
  http.body = *std::move(body);

  absl::StatusOr<HttpResponse> answer = client_.Fetch(http);
  if (!answer.ok()) return answer.status();
  stats.http_status = answer->status;
  if (absl::Status status = WebhookStatusFromHttp(answer->status, stats.delivery_id);
      !status.ok()) {
    return status;
  }
  v1::WebhookDelivery* delivery = response.mutable_delivery();
  delivery->set_delivery_id(stats.delivery_id);
  delivery->set_http_status(answer->status);
  delivery->set_attempts(std::max(1, request.context().attempt()));
  const absl::Duration latency = answer->elapsed;
  delivery->mutable_latency()->set_seconds(absl::ToInt64Seconds(latency));
  delivery->mutable_latency()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(latency % absl::Seconds(1))));
  return absl::OkStatus();
}

}  // namespace conveyor::stages::webhook
