#include "stages/common/grpc_status.h"

#include <gtest/gtest.h>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "stages/common/status_details.h"

namespace conveyor {
namespace {

TEST(GrpcStatusTest, OkMapsToOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(GrpcStatusTest, DetailsTravelInTheStatusTrailer) {
  grpc::Status status = ToGrpcStatus(InvalidField("spec.ops[0].gaussian_blur.sigma", "got -1"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status rpc;
  ASSERT_TRUE(rpc.ParseFromString(status.error_details()));
  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(rpc.details(0).UnpackTo(&bad_request));
  EXPECT_EQ(bad_request.field_violations(0).field(), "spec.ops[0].gaussian_blur.sigma");

  absl::Status back = FromGrpcStatus(status);
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(back.message(), "spec.ops[0].gaussian_blur.sigma: got -1");
}

TEST(GrpcStatusTest, PlainStatusWithoutDetails) {
  grpc::Status status = ToGrpcStatus(absl::UnavailableError("down"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(status.error_details().empty());
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "gone")).code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace conveyor
