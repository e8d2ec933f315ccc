#include "common/grpc_status.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "common/status_details.h"

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

TEST(GrpcStatusTest, HugeMessagesAndDetailsAreCutToFitATrailer) {
  const std::string huge(1 << 20, 'x');
  absl::Status status = WithErrorReason(InvalidField("spec.destination", huge), "PATH_ESCAPES_ROOT",
                                        {{"path", huge}});
  grpc::Status out = ToGrpcStatus(status);
  EXPECT_EQ(out.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LE(out.error_message().size(), kMaxStatusMessageBytes);
  EXPECT_TRUE(absl::EndsWith(out.error_message(), "...")) << out.error_message().substr(0, 40);
  EXPECT_LE(out.error_details().size(), kMaxStatusDetailsBytes);
  // The reason survives the cut.
  EXPECT_EQ(ErrorReason(FromGrpcStatus(out)), "PATH_ESCAPES_ROOT");
}

TEST(GrpcStatusTest, CutsMessagesOnCharacterBoundaries) {
  std::string accents;
  while (accents.size() < 4000) accents += "\xc3\xa9";
  grpc::Status out = ToGrpcStatus(absl::InvalidArgumentError(accents));
  const std::string& message = out.error_message();
  ASSERT_GE(message.size(), 4u);
  // The byte before "..." ends a two-byte sequence, not half of one.
  EXPECT_EQ(static_cast<uint8_t>(message[message.size() - 4]), 0xa9);
}

}  // namespace
}  // namespace conveyor
