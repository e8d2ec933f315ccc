// conveyor-upload as a real process with file:// destinations.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "common/status_details.h"
#include "common/sha256.h"
#include "tests/stages/upload/upload_worker.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::stages::upload {
namespace {

namespace fs = std::filesystem;
using conveyor::testing::ReadFile;
using conveyor::testing::TempDir;
using testing::EncodedImage;
using testing::MakeRequest;
using testing::UploadWorker;

size_t CountEntries(const fs::path& dir) {
  return static_cast<size_t>(
      std::distance(fs::recursive_directory_iterator(dir), fs::recursive_directory_iterator()));
}

class UploadServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(temp_.path().empty());
    root_ = fs::canonical(temp_.path()) / "objects";
    worker_ =
        std::make_unique<UploadWorker>(std::vector<std::string>{"--file-root", root_.string()});
    ASSERT_TRUE(worker_->ready().ok()) << worker_->ready() << "\n" << worker_->Log();
  }

  std::string Dest(const std::string& sub = "") const {
    return "file://" + (sub.empty() ? root_.string() : (root_ / sub).string());
  }

  TempDir temp_;
  fs::path root_;
  std::unique_ptr<UploadWorker> worker_;
};

TEST_F(UploadServiceTest, WritesTheImageUnderTheRoot) {
  const std::string png = EncodedImage(".png", 40, 30);
  conveyor::v1::UploadResponse response;
  ASSERT_TRUE(worker_->Upload(MakeRequest(Dest("out"), png), &response).ok()) << worker_->Log();

  const fs::path expected = root_ / "out" / "c1-3.png";
  EXPECT_EQ(ReadFile(expected.string()), png);
  EXPECT_EQ(response.object().uri(), "file://" + expected.string());
  EXPECT_EQ(response.object().size_bytes(), static_cast<int64_t>(png.size()));
  EXPECT_EQ(response.object().sha256(), Sha256Hex(png));
  EXPECT_EQ(response.object().media_type(), "image/png");
  EXPECT_EQ(response.object().etag(), "");
}

TEST_F(UploadServiceTest, RetryOfTheSameStepOverwritesOneObject) {
  const std::string first = EncodedImage(".jpg", 64, 48, 1);
  const std::string second = EncodedImage(".jpg", 64, 48, 2);
  ASSERT_NE(first, second);
  conveyor::v1::UploadResponse a, b;
  ASSERT_TRUE(worker_->Upload(MakeRequest(Dest(), first, "chains/r", 1, 1), &a).ok());
  ASSERT_TRUE(worker_->Upload(MakeRequest(Dest(), second, "chains/r", 1, 2), &b).ok());
  EXPECT_EQ(a.object().uri(), b.object().uri());
  EXPECT_EQ(CountEntries(root_), 1u);
  EXPECT_EQ(ReadFile((root_ / "r-1.jpg").string()), second);
  EXPECT_EQ(b.object().sha256(), Sha256Hex(second));
}

TEST_F(UploadServiceTest, TemplateUsesDimensionsFromTheImageHeader) {
  conveyor::v1::UploadRequest request = MakeRequest(Dest(), EncodedImage(".webp", 33, 21));
  request.mutable_spec()->set_key_template("{chain_id}/{step}/{width}x{height}.{ext}");
  // Claims in the request are not trusted.
  request.mutable_image()->set_width(9999);
  request.mutable_image()->set_media_type("image/png");
  conveyor::v1::UploadResponse response;
  ASSERT_TRUE(worker_->Upload(request, &response).ok()) << worker_->Log();
  EXPECT_TRUE(fs::exists(root_ / "c1/3/33x21.webp"));
  EXPECT_EQ(response.object().media_type(), "image/webp");
}

TEST_F(UploadServiceTest, DirectCallIsNamedByTheImageDigest) {
  const std::string png = EncodedImage(".png", 8, 8);
  conveyor::v1::UploadRequest request = MakeRequest(Dest(), png);
  request.clear_context();
  conveyor::v1::UploadResponse response;
  ASSERT_TRUE(worker_->Upload(request, &response).ok()) << worker_->Log();
  EXPECT_TRUE(fs::exists(root_ / ("direct-" + Sha256Hex(png).substr(0, 16) + "-0.png")));
}

TEST_F(UploadServiceTest, DotDotOutOfTheRootIsRefused) {
  conveyor::v1::UploadResponse response;
  absl::Status status =
      worker_->Upload(MakeRequest(Dest() + "/../elsewhere", EncodedImage(".png", 4, 4)), &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(ErrorReason(status), "PATH_ESCAPES_ROOT");
  EXPECT_TRUE(absl::StartsWith(status.message(), "spec.destination")) << status;
  EXPECT_FALSE(fs::exists(root_.parent_path() / "elsewhere"));
}

TEST_F(UploadServiceTest, AbsolutePathOutsideTheRootIsRefused) {
  conveyor::v1::UploadResponse response;
  absl::Status status = worker_->Upload(
      MakeRequest("file://" + temp_.path() + "/other", EncodedImage(".png", 4, 4)), &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(ErrorReason(status), "PATH_ESCAPES_ROOT");
}

TEST_F(UploadServiceTest, SymlinkOutOfTheRootIsRefused) {
  const fs::path outside = fs::path(temp_.path()) / "outside";
  fs::create_directories(outside);
  fs::create_directory_symlink(outside, root_ / "sneaky");
  conveyor::v1::UploadRequest request = MakeRequest(Dest(), EncodedImage(".png", 4, 4));
  request.mutable_spec()->set_key_template("sneaky/{chain_id}.{ext}");
  conveyor::v1::UploadResponse response;
  absl::Status status = worker_->Upload(request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(ErrorReason(status), "PATH_ESCAPES_ROOT");
  EXPECT_TRUE(absl::StartsWith(status.message(), "spec.key_template")) << status;
  EXPECT_TRUE(fs::is_empty(outside));
}

TEST_F(UploadServiceTest, DotDotInTheKeyTemplateIsInvalid) {
  conveyor::v1::UploadRequest request = MakeRequest(Dest(), EncodedImage(".png", 4, 4));
  request.mutable_spec()->set_key_template("../{chain_id}.{ext}");
  conveyor::v1::UploadResponse response;
  absl::Status status = worker_->Upload(request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::StartsWith(status.message(), "spec.key_template")) << status;
}

TEST_F(UploadServiceTest, UnknownPlaceholderIsInvalid) {
  conveyor::v1::UploadRequest request = MakeRequest(Dest(), EncodedImage(".png", 4, 4));
  request.mutable_spec()->set_key_template("{chain_id}-{attempt}.{ext}");
  conveyor::v1::UploadResponse response;
  absl::Status status = worker_->Upload(request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::StartsWith(status.message(), "spec.key_template")) << status;
}

TEST_F(UploadServiceTest, UnbalancedBraceIsInvalid) {
  conveyor::v1::UploadRequest request = MakeRequest(Dest(), EncodedImage(".png", 4, 4));
  request.mutable_spec()->set_key_template("{chain_id-{step}.{ext}");
  conveyor::v1::UploadResponse response;
  EXPECT_EQ(worker_->Upload(request, &response).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(UploadServiceTest, NonImageBytesAreInvalid) {
  conveyor::v1::UploadResponse response;
  absl::Status status = worker_->Upload(MakeRequest(Dest(), "GIF89a not what we take"), &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::StartsWith(status.message(), "image.data")) << status;
  EXPECT_EQ(CountEntries(root_), 0u);
}

TEST_F(UploadServiceTest, EmptyImageIsInvalid) {
  conveyor::v1::UploadResponse response;
  EXPECT_EQ(worker_->Upload(MakeRequest(Dest(), ""), &response).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(UploadServiceTest, BadDestinationIsInvalid) {
  conveyor::v1::UploadResponse response;
  for (const char* bad : {"", "ftp://x/y", "file://otherhost/x", "s3://B"}) {
    absl::Status status = worker_->Upload(MakeRequest(bad, EncodedImage(".png", 4, 4)), &response);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StartsWith(status.message(), "spec.destination")) << status;
  }
}

TEST_F(UploadServiceTest, MalformedChainIsInvalid) {
  conveyor::v1::UploadResponse response;
  absl::Status status =
      worker_->Upload(MakeRequest(Dest(), EncodedImage(".png", 4, 4), "c1/../x"), &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::StartsWith(status.message(), "context.chain")) << status;
}

// Issue 10: a long destination made an error trailer over 8 KB, which the
// client saw as RESOURCE_EXHAUSTED instead of our code.
TEST_F(UploadServiceTest, LongDestinationGetsInvalidArgumentNotATrailerOverflow) {
  conveyor::v1::UploadResponse response;
  const std::string png = EncodedImage(".png", 4, 4);
  // Over the limit: refused by length, the value not echoed.
  absl::Status status =
      worker_->Upload(MakeRequest("file:///" + std::string(1 << 20, 'a'), png), &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status.message().substr(0, 200);
  EXPECT_EQ(ErrorReason(status), "FIELD_TOO_LONG");
  EXPECT_LT(status.message().size(), 200u);
  // Under the limit but echoed in the refusal, and all bytes that grpc-message
  // percent-encodes three-fold: the trailer still fits.
  std::string escaping = "file:///etc/";
  while (escaping.size() < 1000) escaping += "%C3%A9\x01";
  status = worker_->Upload(MakeRequest(escaping, png), &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status.message().substr(0, 200);
  const std::string long_key = std::string(1000, '\x01');
  conveyor::v1::UploadRequest request = MakeRequest(Dest(), png);
  request.mutable_spec()->set_key_template(long_key);
  status = worker_->Upload(request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status.message().substr(0, 200);
}

TEST_F(UploadServiceTest, OverLongKeyTemplateIsFieldTooLong) {
  conveyor::v1::UploadResponse response;
  conveyor::v1::UploadRequest request = MakeRequest(Dest(), EncodedImage(".png", 4, 4));
  request.mutable_spec()->set_key_template(std::string(1025, 'k'));
  absl::Status status = worker_->Upload(request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(status), "FIELD_TOO_LONG");
  EXPECT_TRUE(absl::StartsWith(status.message(), "spec.key_template")) << status;
}

TEST_F(UploadServiceTest, DotLeadingKeyAndForeignExtensionAreRefused) {
  conveyor::v1::UploadResponse response;
  for (const auto& [key_template, reason] :
       std::vector<std::pair<std::string, std::string>>{{".ssh/authorized_keys", "UNSAFE_OBJECT_KEY"},
                                                        {"index.html", "WRONG_EXTENSION"},
                                                        {"{chain_id}.jpg", "WRONG_EXTENSION"}}) {
    conveyor::v1::UploadRequest request = MakeRequest(Dest(), EncodedImage(".png", 4, 4));
    request.mutable_spec()->set_key_template(key_template);
    absl::Status status = worker_->Upload(request, &response);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << key_template;
    EXPECT_EQ(ErrorReason(status), reason) << key_template << ": " << status;
  }
  EXPECT_EQ(CountEntries(root_), 0u);
}

TEST(UploadWorkerFlagsTest, NoOverwriteKeepsAnotherChainsFile) {
  TempDir temp;
  const fs::path root = fs::canonical(temp.path()) / "objects";
  UploadWorker worker({"--file-root", root.string(), "--no-overwrite"});
  ASSERT_TRUE(worker.ready().ok()) << worker.ready();
  const std::string dest = "file://" + root.string();
  auto request = [&](const std::string& chain, int attempt, const std::string& image) {
    conveyor::v1::UploadRequest r = MakeRequest(dest, image, chain, 1, attempt);
    r.mutable_spec()->set_key_template("same.{ext}");
    return r;
  };
  const std::string first = EncodedImage(".png", 8, 8, 1);
  const std::string second = EncodedImage(".png", 8, 8, 2);
  conveyor::v1::UploadResponse response;
  ASSERT_TRUE(worker.Upload(request("chains/a", 1, first), &response).ok()) << worker.Log();
  absl::Status other = worker.Upload(request("chains/b", 1, second), &response);
  EXPECT_EQ(other.code(), absl::StatusCode::kAlreadyExists) << other;
  EXPECT_EQ(ErrorReason(other), "OBJECT_EXISTS");
  EXPECT_EQ(ReadFile((root / "same.png").string()), first);
  ASSERT_TRUE(worker.Upload(request("chains/a", 2, second), &response).ok()) << worker.Log();
  EXPECT_EQ(ReadFile((root / "same.png").string()), second);
}

TEST_F(UploadServiceTest, S3WithoutAnEndpointFailsPrecondition) {
  conveyor::v1::UploadResponse response;
  EXPECT_EQ(
      worker_->Upload(MakeRequest("s3://bucket", EncodedImage(".png", 4, 4)), &response).code(),
      absl::StatusCode::kFailedPrecondition);
}

TEST(UploadWorkerFlagsTest, EmptyFileRootDisablesFileDestinations) {
  TempDir dir;
  UploadWorker worker({"--file-root", ""});
  ASSERT_TRUE(worker.ready().ok()) << worker.ready() << "\n" << worker.Log();
  conveyor::v1::UploadResponse response;
  absl::Status status =
      worker.Upload(MakeRequest("file://" + dir.path(), EncodedImage(".png", 4, 4)), &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(UploadWorkerFlagsTest, RelativeFileRootIsRefusedAtStartUp) {
  conveyor::testing::TempDir logs;
  conveyor::testing::ScopedProcess process(
      {CONVEYOR_BIN_DIR "/conveyor-upload", "--listen",
       conveyor::testing::LoopbackAddress(conveyor::testing::PickFreePort()), "--file-root",
       "relative/objects"},
      logs.path() + "/log");
  EXPECT_EQ(process.Wait(absl::Seconds(20)), 2);
  EXPECT_NE(ReadFile(logs.path() + "/log").find("--file-root"), std::string::npos);
}

TEST(UploadWorkerFlagsTest, PlaceholderS3SecretFileIsRefusedAtStartUp) {
  conveyor::testing::TempDir dir;
  std::ofstream(dir.path() + "/secret") << "change-me\n";
  conveyor::testing::ScopedProcess process(
      {CONVEYOR_BIN_DIR "/conveyor-upload", "--listen",
       conveyor::testing::LoopbackAddress(conveyor::testing::PickFreePort()), "--file-root",
       dir.path() + "/objects", "--s3-endpoint", "http://127.0.0.1:1", "--s3-access-key-id",
       "key", "--s3-secret-access-key-file", dir.path() + "/secret"},
      dir.path() + "/log");
  EXPECT_EQ(process.Wait(absl::Seconds(20)), 2);
  const std::string log = ReadFile(dir.path() + "/log");
  EXPECT_NE(log.find("--s3-secret-access-key-file"), std::string::npos) << log;
  EXPECT_NE(log.find("placeholder"), std::string::npos) << log;
}

TEST(UploadWorkerFlagsTest, S3EndpointWithoutCredentialsIsRefusedAtStartUp) {
  conveyor::testing::TempDir dir;
  conveyor::testing::ScopedProcess process(
      {CONVEYOR_BIN_DIR "/conveyor-upload", "--listen",
       conveyor::testing::LoopbackAddress(conveyor::testing::PickFreePort()), "--file-root",
       dir.path() + "/objects", "--s3-endpoint", "http://127.0.0.1:1"},
      dir.path() + "/log",
      {"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "CONVEYOR_S3_ACCESS_KEY_ID=",
       "CONVEYOR_S3_SECRET_ACCESS_KEY="});
  EXPECT_EQ(process.Wait(absl::Seconds(20)), 2);
  EXPECT_NE(ReadFile(dir.path() + "/log").find("credentials"), std::string::npos);
}

}  // namespace
}  // namespace conveyor::stages::upload
