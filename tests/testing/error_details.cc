#include "tests/testing/error_details.h"

#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace conveyor::testing {
namespace {

// The first detail of `status` that unpacks into a `Detail`.
template <typename Detail>
bool FirstDetail(const grpc::Status& status, Detail* detail) {
  google::rpc::Status rpc;
  if (!rpc.ParseFromString(status.error_details())) return false;
  for (const auto& any : rpc.details()) {
    if (any.UnpackTo(detail)) return true;
  }
  return false;
}

}  // namespace

std::string BadRequestField(const grpc::Status& status) {
  google::rpc::BadRequest bad_request;
  if (!FirstDetail(status, &bad_request) || bad_request.field_violations_size() == 0) return "";
  return bad_request.field_violations(0).field();
}

std::string ErrorInfoReason(const grpc::Status& status) {
  google::rpc::ErrorInfo info;
  return FirstDetail(status, &info) ? info.reason() : "";
}

}  // namespace conveyor::testing
