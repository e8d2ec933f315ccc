#include "stages/common/grpc_status.h"

#include <string>

#include "google/rpc/status.pb.h"
#include "stages/common/status_details.h"

namespace conveyor {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status rpc = ToRpcStatus(status);
  std::string details;
  if (rpc.details_size() > 0) details = rpc.SerializeAsString();
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()), std::move(details));
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
