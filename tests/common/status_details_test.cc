#include "common/status_details.h"

#include <gtest/gtest.h>

#include "google/rpc/error_details.pb.h"

namespace conveyor {
namespace {

TEST(StatusDetailsTest, InvalidFieldNamesFieldAndCarriesBadRequest) {
  absl::Status status = InvalidField("spec.width", "want 0..16384, got -3");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "spec.width: want 0..16384, got -3");

  google::rpc::Status rpc = ToRpcStatus(status);
  ASSERT_EQ(rpc.details_size(), 1);
  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(rpc.details(0).UnpackTo(&bad_request));
  ASSERT_EQ(bad_request.field_violations_size(), 1);
  EXPECT_EQ(bad_request.field_violations(0).field(), "spec.width");
}

TEST(StatusDetailsTest, ErrorReasonRoundTrips) {
  absl::Status status = WithErrorReason(absl::PermissionDeniedError("no"), "SSRF_BLOCKED");
  EXPECT_EQ(ErrorReason(status), "SSRF_BLOCKED");
  EXPECT_EQ(ErrorReason(absl::InternalError("x")), "");
  EXPECT_TRUE(WithErrorReason(absl::OkStatus(), "X").ok());
}

TEST(StatusDetailsTest, RpcStatusRoundTripKeepsCodeMessageAndDetails) {
  absl::Status original = WithErrorReason(InvalidField("url", "bad"), "BAD_URL");
  absl::Status back = FromRpcStatus(ToRpcStatus(original));
  EXPECT_EQ(back.code(), original.code());
  EXPECT_EQ(back.message(), original.message());
  EXPECT_EQ(ErrorReason(back), "BAD_URL");
  EXPECT_EQ(ToRpcStatus(back).details_size(), 2);
}

}  // namespace
}  // namespace conveyor
