#include "stages/common/image_codec.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "stages/common/status_details.h"

namespace conveyor {
namespace {

// A smooth gradient with a little structure, so lossy codecs behave as on photos.
cv::Mat Gradient(int width, int height) {
  cv::Mat image(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      image.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(x * 255 / width),
                                            static_cast<uchar>(y * 255 / height),
                                            static_cast<uchar>((x + y) % 64 * 4));
    }
  }
  return image;
}

std::string Encode(const cv::Mat& image, const std::string& ext) {
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes));
  return std::string(bytes.begin(), bytes.end());
}

// A PNG that is only a signature and an IHDR chunk declaring width x height:
// no pixel data at all, so anything beyond the header check would fail.
std::string PngHeaderOnly(uint32_t width, uint32_t height) {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  png += std::string("\0\0\0\x0dIHDR", 8);
  for (uint32_t v : {width, height}) {
    for (int shift : {24, 16, 8, 0}) png.push_back(static_cast<char>((v >> shift) & 0xFF));
  }
  png += std::string("\x08\x02\0\0\0", 5);  // 8-bit RGB
  png += std::string(4, '\0');              // CRC (never checked: never decoded)
  return png;
}

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

}  // namespace
}  // namespace conveyor
