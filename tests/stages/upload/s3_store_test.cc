#include "stages/upload/s3_store.h"

#include <gtest/gtest.h>

#include "common/status_details.h"

namespace conveyor::stages::upload {
namespace {

TEST(S3StoreTest, ReadsTheErrorCodeFromTheXmlBody) {
  EXPECT_EQ(S3ErrorCode("<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>"
                        "<Message>The specified bucket does not exist</Message></Error>"),
            "NoSuchBucket");
  EXPECT_EQ(S3ErrorCode("not xml"), "");
  EXPECT_EQ(S3ErrorCode("<Code>unterminated"), "");
}

TEST(S3StoreTest, MapsHttpStatusToRetryableOrNot) {
  const auto code = [](long http, absl::string_view s3) {
    return S3HttpError(http, s3, "u").code();
  };
  EXPECT_EQ(code(403, "InvalidAccessKeyId"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(code(403, "SignatureDoesNotMatch"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(code(404, "NoSuchBucket"), absl::StatusCode::kNotFound);
  EXPECT_EQ(code(500, "InternalError"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(code(503, "SlowDown"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(code(408, ""), absl::StatusCode::kUnavailable);
  EXPECT_EQ(code(429, ""), absl::StatusCode::kUnavailable);
  EXPECT_EQ(code(409, "OperationAborted"), absl::StatusCode::kAborted);
  EXPECT_EQ(code(400, "InvalidArgument"), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(code(301, "PermanentRedirect"), absl::StatusCode::kFailedPrecondition);
}

TEST(S3StoreTest, ErrorCarriesTheS3CodeAsReason) {
  absl::Status status = S3HttpError(404, "NoSuchBucket", "http://127.0.0.1:1/b/k");
  EXPECT_EQ(ErrorReason(status), "S3_NO_SUCH_BUCKET");
  EXPECT_NE(status.message().find("NoSuchBucket"), absl::string_view::npos);
  EXPECT_EQ(ErrorReason(S3HttpError(403, "InvalidAccessKeyId", "u")), "S3_INVALID_ACCESS_KEY_ID");
  EXPECT_EQ(ErrorReason(S3HttpError(500, "", "u")), "");
}

TEST(S3StoreTest, ValidatesOptions) {
  S3Options good;
  good.endpoint = "http://127.0.0.1:4568";
  good.access_key_id = "AK";
  good.secret_access_key = "SK";
  EXPECT_TRUE(ValidateS3Options(good).ok());

  for (const char* endpoint :
       {"", "127.0.0.1:4568", "ftp://h", "http://", "http://h/path", "http://user@h"}) {
    S3Options bad = good;
    bad.endpoint = endpoint;
    EXPECT_EQ(ValidateS3Options(bad).code(), absl::StatusCode::kInvalidArgument) << endpoint;
  }
  S3Options no_secret = good;
  no_secret.secret_access_key.clear();
  absl::Status status = ValidateS3Options(no_secret);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  S3Options no_region = good;
  no_region.region.clear();
  EXPECT_EQ(ValidateS3Options(no_region).code(), absl::StatusCode::kInvalidArgument);
}

// A port nobody listens on, on loopback: connection refused.
S3Options NowhereOptions() {
  S3Options options;
  options.endpoint = "http://127.0.0.1:1";
  options.access_key_id = "AK";
  options.secret_access_key = "SK";
  return options;
}

TEST(S3StoreTest, NothingListeningIsUnavailable) {
  S3Store store(NowhereOptions());
  absl::StatusOr<conveyor::v1::StoredObject> put =
      store.Put("bkt", "k.jpg", "abc", "image/jpeg", "00", nullptr, absl::InfiniteFuture());
  EXPECT_EQ(put.status().code(), absl::StatusCode::kUnavailable) << put.status();
}

TEST(S3StoreTest, PassedDeadlineIsDeadlineExceeded) {
  S3Store store(NowhereOptions());
  EXPECT_EQ(
      store.Put("bkt", "k.jpg", "abc", "image/jpeg", "00", nullptr, absl::Now() - absl::Seconds(1))
          .status()
          .code(),
      absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace conveyor::stages::upload
