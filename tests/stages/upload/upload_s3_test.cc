// conveyor-upload as a real process against a real S3-compatible server
// (s3rver) on loopback.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "common/sha256.h"
#include "tests/stages/upload/upload_worker.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/s3rver_fixture.h"

namespace conveyor::stages::upload {
namespace {

constexpr char kBucket[] = "conveyor-test";
// s3rver checks the access key id but not the signature, so any secret is
// accepted; a distinctive one lets the tests prove it never reaches the log.
constexpr char kSecret[] = "secret-that-must-never-be-logged";

using conveyor::testing::HttpGet;
using conveyor::testing::HttpGetResult;
using conveyor::testing::S3rver;
using conveyor::testing::TempDir;
using testing::EncodedImage;
using testing::MakeRequest;
using testing::UploadWorker;

int CountOccurrences(absl::string_view text, absl::string_view needle) {
  int count = 0;
  for (size_t at = text.find(needle); at != absl::string_view::npos;
       at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

class UploadS3Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<S3rver>> started = S3rver::Start({kBucket});
    if (!started.ok()) {
      start_error_ = new absl::Status(started.status());
      return;
    }
    s3rver_ = started->release();
  }
  static void TearDownTestSuite() {
    delete s3rver_;
    s3rver_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(s3rver_, nullptr) << "s3rver did not start: " << *start_error_;
  }

  // A worker on the s3rver endpoint; credentials through the environment,
  // as the docs recommend.
  std::unique_ptr<UploadWorker> StartWorker(const std::string& endpoint,
                                            const std::string& access_key_id) {
    auto worker = std::make_unique<UploadWorker>(
        std::vector<std::string>{"--file-root", file_root_.path() + "/objects", "--s3-endpoint",
                                 endpoint, "--s3-region", "us-east-1"},
        std::vector<std::string>{"AWS_ACCESS_KEY_ID=" + access_key_id,
                                 absl::StrCat("AWS_SECRET_ACCESS_KEY=", kSecret)});
    EXPECT_TRUE(worker->ready().ok()) << worker->ready() << "\n" << worker->Log();
    return worker;
  }

  static S3rver* s3rver_;
  static absl::Status* start_error_;
  TempDir file_root_;
};

S3rver* UploadS3Test::s3rver_ = nullptr;
absl::Status* UploadS3Test::start_error_ = nullptr;

TEST_F(UploadS3Test, PutThenGetReturnsTheSameBytesAndEtag) {
  auto worker = StartWorker(s3rver_->endpoint(), std::string(S3rver::kAccessKeyId));
  const std::string jpeg = EncodedImage(".jpg", 120, 80);
  conveyor::v1::UploadResponse response;
  absl::Status status =
      worker->Upload(MakeRequest(absl::StrCat("s3://", kBucket), jpeg, "chains/s3a", 2), &response);
  ASSERT_TRUE(status.ok()) << status << "\n" << worker->Log() << "\n" << s3rver_->Log();

  EXPECT_EQ(response.object().uri(), absl::StrCat("s3://", kBucket, "/s3a-2.jpg"));
  EXPECT_EQ(response.object().size_bytes(), static_cast<int64_t>(jpeg.size()));
  EXPECT_EQ(response.object().sha256(), Sha256Hex(jpeg));
  EXPECT_EQ(response.object().media_type(), "image/jpeg");
  EXPECT_FALSE(response.object().etag().empty());

  absl::StatusOr<HttpGetResult> got = HttpGet(s3rver_->ObjectUrl(kBucket, "s3a-2.jpg"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, jpeg);
  EXPECT_EQ(got->etag, response.object().etag());
  EXPECT_EQ(got->content_type, "image/jpeg");
  EXPECT_EQ(worker->Log().find(kSecret), std::string::npos) << worker->Log();
}

TEST_F(UploadS3Test, RetryOfTheSameStepOverwritesOneObject) {
  auto worker = StartWorker(s3rver_->endpoint(), std::string(S3rver::kAccessKeyId));
  const std::string first = EncodedImage(".png", 50, 50, 1);
  const std::string second = EncodedImage(".png", 50, 50, 2);
  const std::string destination = absl::StrCat("s3://", kBucket, "/retry/prefix");
  conveyor::v1::UploadResponse a, b;
  ASSERT_TRUE(worker->Upload(MakeRequest(destination, first, "chains/rt", 4, 1), &a).ok());
  ASSERT_TRUE(worker->Upload(MakeRequest(destination, second, "chains/rt", 4, 2), &b).ok());
  EXPECT_EQ(a.object().uri(), b.object().uri());
  EXPECT_EQ(b.object().uri(), absl::StrCat("s3://", kBucket, "/retry/prefix/rt-4.png"));
  EXPECT_NE(a.object().etag(), b.object().etag());

  absl::StatusOr<HttpGetResult> got = HttpGet(s3rver_->ObjectUrl(kBucket, "retry/prefix/rt-4.png"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->body, second);
  EXPECT_EQ(got->etag, b.object().etag());

  // Exactly one object under the prefix.
  absl::StatusOr<HttpGetResult> listing =
      HttpGet(absl::StrCat(s3rver_->endpoint(), "/", kBucket, "?list-type=2&prefix=retry/"));
  ASSERT_TRUE(listing.ok()) << listing.status();
  ASSERT_EQ(listing->status, 200) << listing->body;
  EXPECT_EQ(CountOccurrences(listing->body, "<Key>"), 1) << listing->body;
}

TEST_F(UploadS3Test, KeyWithEqualsAndSubdirectoriesRoundTrips) {
  auto worker = StartWorker(s3rver_->endpoint(), std::string(S3rver::kAccessKeyId));
  const std::string webp = EncodedImage(".webp", 30, 20);
  conveyor::v1::UploadRequest request = MakeRequest(absl::StrCat("s3://", kBucket), webp);
  // '=' is in the safe set and needs percent-encoding in the signed path.
  request.mutable_spec()->set_key_template("size=thumbs/{chain_id}/{width}x{height}.{ext}");
  conveyor::v1::UploadResponse response;
  ASSERT_TRUE(worker->Upload(request, &response).ok()) << worker->Log();
  absl::StatusOr<HttpGetResult> got =
      HttpGet(s3rver_->ObjectUrl(kBucket, "size%3Dthumbs/c1/30x20.webp"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, webp);
}

// --no-overwrite on S3: HEAD first (s3rver ignores If-None-Match), metadata
// says who wrote the object.
TEST_F(UploadS3Test, NoOverwriteRefusesOtherWritersButNotARetry) {
  auto worker = std::make_unique<UploadWorker>(
      std::vector<std::string>{"--file-root", file_root_.path() + "/objects", "--s3-endpoint",
                               s3rver_->endpoint(), "--no-overwrite"},
      std::vector<std::string>{absl::StrCat("AWS_ACCESS_KEY_ID=", S3rver::kAccessKeyId),
                               absl::StrCat("AWS_SECRET_ACCESS_KEY=", kSecret)});
  ASSERT_TRUE(worker->ready().ok()) << worker->ready();
  const std::string destination = absl::StrCat("s3://", kBucket, "/noov");
  const std::string first = EncodedImage(".png", 40, 40, 1);
  const std::string second = EncodedImage(".png", 40, 40, 2);
  auto request = [&](const std::string& chain, int attempt, const std::string& image) {
    conveyor::v1::UploadRequest r = MakeRequest(destination, image, chain, 2, attempt);
    r.mutable_spec()->set_key_template("shared.{ext}");
    return r;
  };
  conveyor::v1::UploadResponse response;
  ASSERT_TRUE(worker->Upload(request("chains/a", 1, first), &response).ok()) << worker->Log();
  // Another chain may not replace it...
  absl::Status other = worker->Upload(request("chains/b", 1, second), &response);
  EXPECT_EQ(other.code(), absl::StatusCode::kAlreadyExists) << other;
  EXPECT_EQ(ErrorReason(other), "OBJECT_EXISTS");
  // ...unless it writes the very same bytes (nothing changes: idempotent).
  EXPECT_TRUE(worker->Upload(request("chains/b", 1, first), &response).ok());
  // A retry of the same chain and step replaces its own object.
  ASSERT_TRUE(worker->Upload(request("chains/a", 2, second), &response).ok()) << worker->Log();
  absl::StatusOr<HttpGetResult> got = HttpGet(s3rver_->ObjectUrl(kBucket, "noov/shared.png"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->body, second);
}

TEST_F(UploadS3Test, BucketOutsideTheAllowListIsRefusedWithoutARequest) {
  auto worker = std::make_unique<UploadWorker>(
      std::vector<std::string>{"--file-root", file_root_.path() + "/objects", "--s3-endpoint",
                               s3rver_->endpoint(), "--s3-allowed-buckets",
                               absl::StrCat(kBucket, ",another")},
      std::vector<std::string>{absl::StrCat("AWS_ACCESS_KEY_ID=", S3rver::kAccessKeyId),
                               absl::StrCat("AWS_SECRET_ACCESS_KEY=", kSecret)});
  ASSERT_TRUE(worker->ready().ok()) << worker->ready();
  const std::string png = EncodedImage(".png", 10, 10);
  conveyor::v1::UploadResponse response;
  absl::Status refused = worker->Upload(MakeRequest("s3://victim-bucket", png), &response);
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
  EXPECT_EQ(ErrorReason(refused), "BUCKET_NOT_ALLOWED");
  EXPECT_TRUE(worker->Upload(MakeRequest(absl::StrCat("s3://", kBucket), png), &response).ok())
      << worker->Log();
}

// The secret key from --s3-secret-access-key-file (never argv), the
// environment's empty: without the file the worker would exit 2 at start
// ("needs credentials"). s3rver checks the access key id, not the signature.
TEST_F(UploadS3Test, SecretKeyFromAFileSignsRequests) {
  const std::string secret_file = file_root_.path() + "/s3-secret";
  std::ofstream(secret_file) << kSecret << "\n";
  auto worker = std::make_unique<UploadWorker>(
      std::vector<std::string>{"--file-root", file_root_.path() + "/objects", "--s3-endpoint",
                               s3rver_->endpoint(), "--s3-secret-access-key-file", secret_file},
      std::vector<std::string>{absl::StrCat("AWS_ACCESS_KEY_ID=", S3rver::kAccessKeyId),
                               "AWS_SECRET_ACCESS_KEY=", "CONVEYOR_S3_SECRET_ACCESS_KEY="});
  ASSERT_TRUE(worker->ready().ok()) << worker->ready() << "\n" << worker->Log();
  conveyor::v1::UploadResponse response;
  EXPECT_TRUE(worker
                  ->Upload(MakeRequest(absl::StrCat("s3://", kBucket, "/from-file"),
                                       EncodedImage(".png", 6, 6)),
                           &response)
                  .ok())
      << worker->Log();
  EXPECT_EQ(worker->Log().find(kSecret), std::string::npos);
}

TEST_F(UploadS3Test, UnknownAccessKeyIsPermissionDenied) {
  auto worker = StartWorker(s3rver_->endpoint(), "NOT-A-KEY");
  conveyor::v1::UploadResponse response;
  absl::Status status = worker->Upload(
      MakeRequest(absl::StrCat("s3://", kBucket), EncodedImage(".png", 4, 4), "chains/denied"),
      &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_EQ(ErrorReason(status), "S3_INVALID_ACCESS_KEY_ID");
  // The secret never reaches the log.
  EXPECT_EQ(worker->Log().find(kSecret), std::string::npos) << worker->Log();
  absl::StatusOr<HttpGetResult> got = HttpGet(s3rver_->ObjectUrl(kBucket, "denied-3.png"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, 404);
}

TEST_F(UploadS3Test, MissingBucketIsNotFound) {
  auto worker = StartWorker(s3rver_->endpoint(), std::string(S3rver::kAccessKeyId));
  conveyor::v1::UploadResponse response;
  absl::Status status =
      worker->Upload(MakeRequest("s3://no-such-bucket", EncodedImage(".png", 4, 4)), &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_EQ(ErrorReason(status), "S3_NO_SUCH_BUCKET");
}

TEST_F(UploadS3Test, EndpointNotListeningIsUnavailable) {
  auto worker = StartWorker(absl::StrCat("http://127.0.0.1:", conveyor::testing::PickFreePort()),
                            std::string(S3rver::kAccessKeyId));
  conveyor::v1::UploadResponse response;
  absl::Status status = worker->Upload(
      MakeRequest(absl::StrCat("s3://", kBucket), EncodedImage(".png", 4, 4)), &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
}

}  // namespace
}  // namespace conveyor::stages::upload
