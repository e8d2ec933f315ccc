// The codec's limits, decodes and encodes (images from codec_samples.h).
// Same pixels as OpenCV gave: image_codec_fidelity_test.cc; hostile files:
// image_codec_hostile_test.cc.
#include "stages/common/image_codec.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/status_details.h"
#include "tests/stages/common/codec_samples.h"

namespace conveyor {
namespace {

TEST(ImageCodecTest, RefusesDeclaredBombBeforeDecoding) {
  auto header = CheckDeclaredSize(PngHeaderOnly(100000, 100000), kDefaultMaxPixels);
  ASSERT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(header.status()), kReasonImageTooLarge);
  EXPECT_NE(header.status().message().find("100000x100000"), absl::string_view::npos)
      << header.status();
}

TEST(ImageCodecTest, AcceptsDeclaredSizeAtTheLimit) {
  auto header = CheckDeclaredSize(PngHeaderOnly(1000, 100), 100000);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->width, 1000);
  auto over = CheckDeclaredSize(PngHeaderOnly(1000, 101), 100000);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ImageCodecTest, RefusesNonImageBytes) {
  auto header = CheckDeclaredSize("<html>not an image</html>", kDefaultMaxPixels);
  ASSERT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(header.status()), kReasonNotAnImage);
  EXPECT_TRUE(absl::StartsWith(header.status().message(), "image.data: not an image"))
      << header.status();
}

TEST(ImageCodecTest, CorruptPixelDataIsInvalidArgument) {
  std::string png = PngHeaderOnly(64, 64);
  auto header = CheckDeclaredSize(png, kDefaultMaxPixels);
  ASSERT_TRUE(header.ok()) << header.status();
  auto image = DecodeImage(png, *header);
  ASSERT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(image.status()), kReasonNotAnImage);
}

TEST(ImageCodecTest, PngChunkLongerThanTheFileIsRefusedWithoutAllocatingIt) {
  // An eXIf chunk declaring 64 MiB in a file of a few hundred bytes: libpng
  // would allocate the declared length before reading (a fuzz finding).
  const std::string png = Encode(cv::Mat(3, 5, CV_8UC3, cv::Scalar(1, 2, 3)), ".png");
  std::string chunk = std::string("\x04\x00\x00\x1a", 4) + "eXIfMM\0*";
  constexpr size_t kAfterIhdr = 8 + 25;
  const std::string hostile = png.substr(0, kAfterIhdr) + chunk + png.substr(kAfterIhdr);
  auto header = CheckDeclaredSize(hostile, kDefaultMaxPixels);
  ASSERT_TRUE(header.ok()) << header.status();
  auto image = DecodeImage(hostile, *header);
  ASSERT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(image.status()), kReasonNotAnImage);
}

TEST(ImageCodecTest, ReducedJpegDecodeRoundsSidesUp) {
  std::string jpeg = Encode(Gradient(1001, 601), ".jpg");
  auto header = CheckDeclaredSize(jpeg, kDefaultMaxPixels);
  ASSERT_TRUE(header.ok()) << header.status();
  const std::vector<std::pair<int, cv::Size>> cases = {
      {1, {1001, 601}}, {2, {501, 301}}, {4, {251, 151}}, {8, {126, 76}}};
  for (const auto& [reduce, size] : cases) {
    auto image = DecodeImage(jpeg, *header, reduce);
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->size(), size) << "reduce " << reduce;
    EXPECT_EQ(image->type(), CV_8UC3);
  }
}

TEST(ImageCodecTest, ReducedDecodeOnlyForJpeg) {
  std::string png = Encode(Gradient(40, 30), ".png");
  auto header = CheckDeclaredSize(png, kDefaultMaxPixels);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(DecodeImage(png, *header, 2).status().code(), absl::StatusCode::kInternal);
}

TEST(ImageCodecTest, ResolveEncodingDefaults) {
  v1::EncodeOptions options;
  auto encoding = ResolveEncoding(options, ImageKind::kPng, "spec.output");
  ASSERT_TRUE(encoding.ok()) << encoding.status();
  EXPECT_EQ(encoding->kind, ImageKind::kPng);
  EXPECT_EQ(encoding->quality, 85);
  options.set_format(v1::IMAGE_FORMAT_WEBP);
  options.set_quality(40);
  encoding = ResolveEncoding(options, ImageKind::kPng, "spec.output");
  ASSERT_TRUE(encoding.ok()) << encoding.status();
  EXPECT_EQ(encoding->kind, ImageKind::kWebp);
  EXPECT_EQ(encoding->quality, 40);
}

TEST(ImageCodecTest, ResolveEncodingRejectsBadFields) {
  v1::EncodeOptions options;
  options.set_quality(101);
  auto encoding = ResolveEncoding(options, ImageKind::kJpeg, "spec.output");
  EXPECT_EQ(encoding.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(encoding.status().message(), "spec.output.quality: want 1..100 (0 = default 85), got 101");
  options.set_quality(-1);
  EXPECT_EQ(ResolveEncoding(options, ImageKind::kJpeg, "spec.output").status().code(),
            absl::StatusCode::kInvalidArgument);
  options.set_quality(0);
  options.set_format(static_cast<v1::ImageFormat>(9));
  encoding = ResolveEncoding(options, ImageKind::kJpeg, "spec.output");
  EXPECT_EQ(encoding.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(encoding.status().message(), "spec.output.format:"))
      << encoding.status();
}

TEST(ImageCodecTest, EncodesEachFormatWithItsMediaType) {
  const cv::Mat source = Gradient(64, 48);
  const std::vector<std::pair<ImageKind, std::string>> cases = {
      {ImageKind::kJpeg, "image/jpeg"}, {ImageKind::kPng, "image/png"},
      {ImageKind::kWebp, "image/webp"}};
  for (const auto& [kind, media_type] : cases) {
    v1::Image out;
    ASSERT_TRUE(EncodeInto(source, Encoding{kind, 90}, out).ok());
    EXPECT_EQ(out.media_type(), media_type);
    EXPECT_EQ(out.width(), 64);
    EXPECT_EQ(out.height(), 48);
    auto header = ParseImageHeader(out.data());
    ASSERT_TRUE(header.ok()) << header.status();
    EXPECT_EQ(header->kind, kind);
    EXPECT_EQ(header->width, 64);
    EXPECT_EQ(header->height, 48);
  }
}

TEST(ImageCodecTest, PngRoundTripIsLossless) {
  const cv::Mat source = Gradient(33, 17);
  auto bytes = EncodeImage(source, Encoding{ImageKind::kPng, 85});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto header = CheckDeclaredSize(*bytes, kDefaultMaxPixels);
  ASSERT_TRUE(header.ok());
  auto decoded = DecodeImage(*bytes, *header);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(cv::norm(source, *decoded, cv::NORM_INF), 0);
}

TEST(ImageCodecTest, JpegQualityChangesSize) {
  const cv::Mat source = Gradient(256, 256);
  auto low = EncodeImage(source, Encoding{ImageKind::kJpeg, 10});
  auto high = EncodeImage(source, Encoding{ImageKind::kJpeg, 95});
  ASSERT_TRUE(low.ok() && high.ok());
  EXPECT_LT(low->size(), high->size());
}

TEST(ImageCodecTest, WebpRefusesSidesItCannotStore) {
  cv::Mat wide(1, 16384, CV_8UC3, cv::Scalar(1, 2, 3));
  EXPECT_EQ(EncodeImage(wide, Encoding{ImageKind::kWebp, 80}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ImageCodecTest, ScaledJpegDecodeMatchesOpenCvReducedColor) {
  const std::string jpeg = Encode(Gradient(999, 333), ".jpg");
  const std::vector<std::pair<int, int>> cases = {{1, cv::IMREAD_COLOR},
                                                  {2, cv::IMREAD_REDUCED_COLOR_2},
                                                  {4, cv::IMREAD_REDUCED_COLOR_4},
                                                  {8, cv::IMREAD_REDUCED_COLOR_8}};
  for (const auto& [reduce, flag] : cases) {
    auto image = Decode(jpeg, reduce);
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->size(), cv::Size((999 + reduce - 1) / reduce, (333 + reduce - 1) / reduce));
    EXPECT_TRUE(SamePixels(*image, OpenCvDecode(jpeg, flag))) << "reduce " << reduce;
  }
}

TEST(ImageCodecTest, GrayJpegDecodesToThreeEqualChannels) {
  cv::Mat gray(40, 30, CV_8UC1);
  cv::randu(gray, 0, 256);
  const std::string jpeg = Encode(gray, ".jpg");
  auto image = Decode(jpeg);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->type(), CV_8UC3);
  EXPECT_TRUE(SamePixels(*image, OpenCvDecode(jpeg)));
}

}  // namespace
}  // namespace conveyor
