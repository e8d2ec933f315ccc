// Rich error details on absl::Status, without gRPC.
//
// Logic libraries return absl::Status; these helpers attach the google.rpc
// detail messages (BadRequest, ErrorInfo) as payloads, so that the edge
// (grpc_status.h) can send them as a google.rpc.Status that grpcurl and every
// gRPC client can decode.
#ifndef CONVEYOR_COMMON_STATUS_DETAILS_H_
#define CONVEYOR_COMMON_STATUS_DETAILS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/rpc/status.pb.h"

namespace conveyor {

// The payload type URL prefix used for detail messages.
inline constexpr absl::string_view kTypeUrlPrefix = "type.googleapis.com/";

// INVALID_ARGUMENT naming `field` (e.g. "spec.width"), with a BadRequest
// detail. The message reads "<field>: <description>".
absl::Status InvalidField(absl::string_view field, absl::string_view description);

// Adds a google.rpc.ErrorInfo detail {reason, domain "conveyor.dev",
// metadata} to `status` (a no-op on OK). Reasons are UPPER_SNAKE_CASE, e.g.
// "DESTINATION_BLOCKED"; metadata says what it concerns, e.g. {"host", "a.b"}.
absl::Status WithErrorReason(
    absl::Status status, absl::string_view reason,
    const std::vector<std::pair<std::string, std::string>>& metadata = {});

// RESOURCE_EXHAUSTED with this reason means a worker refused a call at once,
// before doing any work, because it was at its concurrency limit.
inline constexpr absl::string_view kReasonWorkerBusy = "WORKER_BUSY";

// ErrorInfo reason of a request field longer than its documented limit.
inline constexpr absl::string_view kReasonFieldTooLong = "FIELD_TOO_LONG";

// OK if `value` has at most `max_bytes` bytes; otherwise INVALID_ARGUMENT
// naming `field` with its length and the limit (never the value itself),
// reason FIELD_TOO_LONG.
absl::Status CheckFieldLength(absl::string_view field, absl::string_view value, size_t max_bytes);

// `value` in double quotes for an error message: control bytes as \xNN and
// at most `max_bytes` of it, "..." marking a cut, so a huge or hostile input
// is never echoed whole.
std::string QuoteForMessage(absl::string_view value, size_t max_bytes = 200);

// Returns the ErrorInfo reason attached to `status`, or "" if none.
std::string ErrorReason(const absl::Status& status);

// Converts between absl::Status (payloads keyed by type URL) and
// google.rpc.Status (details as Any). Round-trips code, message and details.
google::rpc::Status ToRpcStatus(const absl::Status& status);
absl::Status FromRpcStatus(const google::rpc::Status& status);

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_STATUS_DETAILS_H_
