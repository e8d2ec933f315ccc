#include "tests/testing/stage_worker.h"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace conveyor::testing {

std::string BadRequestField(const grpc::Status& status) {
  google::rpc::Status rpc;
  if (!rpc.ParseFromString(status.error_details())) return "";
  for (const auto& detail : rpc.details()) {
    google::rpc::BadRequest bad_request;
    if (detail.UnpackTo(&bad_request) && bad_request.field_violations_size() > 0) {
      return bad_request.field_violations(0).field();
    }
  }
  return "";
}

}  // namespace conveyor::testing
