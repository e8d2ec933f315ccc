#include "tests/testing/bad_request_field.h"

#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "google/rpc/error_details.pb.h"

namespace conveyor::testing {

std::string BadRequestField(const absl::Status& status) {
  absl::optional<absl::Cord> payload =
      status.GetPayload(absl::StrCat(kTypeUrlPrefix, "google.rpc.BadRequest"));
  if (!payload.has_value()) return "";
  google::rpc::BadRequest bad_request;
  if (!bad_request.ParseFromString(std::string(*payload)) ||
      bad_request.field_violations_size() != 1) {
    return "";
  }
  return bad_request.field_violations(0).field();
}

}  // namespace conveyor::testing
