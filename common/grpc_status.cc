#include "common/grpc_status.h"

#include <string>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "common/status_details.h"

namespace conveyor {
namespace {

// Cuts `text` to at most `max_bytes`, not inside a UTF-8 sequence, marking
// the cut with "...".
std::string Trimmed(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t end = max_bytes - 3;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end)) + "...";
}

// Shortens the free text inside the detail messages we send; a detail we do
// not know is kept only while the whole stays under the limit.
void TrimDetails(google::rpc::Status& rpc) {
  rpc.set_message(Trimmed(rpc.message(), kMaxStatusMessageBytes));
  for (google::protobuf::Any& any : *rpc.mutable_details()) {
    google::rpc::BadRequest bad_request;
    google::rpc::ErrorInfo info;
    if (any.Is<google::rpc::BadRequest>() && any.UnpackTo(&bad_request)) {
      for (auto& violation : *bad_request.mutable_field_violations()) {
        violation.set_field(Trimmed(violation.field(), 256));
        violation.set_description(Trimmed(violation.description(), 512));
      }
      any.PackFrom(bad_request);
    } else if (any.Is<google::rpc::ErrorInfo>() && any.UnpackTo(&info)) {
      for (auto& [key, value] : *info.mutable_metadata()) value = Trimmed(value, 256);
      any.PackFrom(info);
    }
  }
  // Last resort: the reason alone still tells the client what happened.
  while (rpc.ByteSizeLong() > kMaxStatusDetailsBytes && rpc.details_size() > 0) {
    rpc.mutable_details()->RemoveLast();
  }
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status rpc = ToRpcStatus(status);
  std::string details;
  if (rpc.details_size() > 0) {
    TrimDetails(rpc);
    if (rpc.details_size() > 0) details = rpc.SerializeAsString();
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      Trimmed(status.message(), kMaxStatusMessageBytes), std::move(details));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  google::rpc::Status rpc;
  if (!status.error_details().empty() && rpc.ParseFromString(status.error_details())) {
    // The trailer is authoritative for details; code and message come from the
    // status line, which a proxy may have rewritten.
    rpc.set_code(status.error_code());
    rpc.set_message(status.error_message());
    return FromRpcStatus(rpc);
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace conveyor
