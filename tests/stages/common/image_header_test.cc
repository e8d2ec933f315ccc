#include "stages/common/image_header.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

namespace conveyor {
namespace {

std::string Encode(const std::string& ext, int width, int height,
                   std::vector<int> params = {}) {
  cv::Mat image(height, width, CV_8UC3, cv::Scalar(10, 120, 240));
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes, params));
  return std::string(bytes.begin(), bytes.end());
}

TEST(ImageHeaderTest, ReadsJpegSizeFromFrameHeader) {
  auto header = ParseImageHeader(Encode(".jpg", 37, 21));
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->kind, ImageKind::kJpeg);
  EXPECT_EQ(header->width, 37);
  EXPECT_EQ(header->height, 21);
  EXPECT_EQ(MediaTypeOf(header->kind), "image/jpeg");
}

TEST(ImageHeaderTest, ReadsProgressiveJpegSize) {
  auto header = ParseImageHeader(Encode(".jpg", 64, 48, {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->width, 64);
  EXPECT_EQ(header->height, 48);
}

TEST(ImageHeaderTest, ReadsPngSize) {
  auto header = ParseImageHeader(Encode(".png", 5, 300));
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->kind, ImageKind::kPng);
  EXPECT_EQ(header->width, 5);
  EXPECT_EQ(header->height, 300);
}

TEST(ImageHeaderTest, ReadsLossyAndLosslessWebpSize) {
  for (int quality : {80, 101}) {  // 101 selects lossless (VP8L) in OpenCV
    auto header = ParseImageHeader(Encode(".webp", 123, 45, {cv::IMWRITE_WEBP_QUALITY, quality}));
    ASSERT_TRUE(header.ok()) << header.status();
    EXPECT_EQ(header->kind, ImageKind::kWebp);
    EXPECT_EQ(header->width, 123) << "quality " << quality;
    EXPECT_EQ(header->height, 45) << "quality " << quality;
  }
}

TEST(ImageHeaderTest, ReadsExtendedWebpCanvasSize) {
  std::string vp8x = std::string("RIFF\x20\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0", 24);
  vp8x += std::string("\x0f\x27\x00\x9f\x0f\x00", 6);  // 9999+1 x 3999+1
  auto header = ParseImageHeader(vp8x);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->width, 10000);
  EXPECT_EQ(header->height, 4000);
}

TEST(ImageHeaderTest, DeclaredHugeSizeIsReportedNotDecoded) {
  // A PNG header declaring 100000 x 100000 pixels and no pixel data at all.
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\x00\x01\x86\xa0\x00\x01\x86\xa0", 24);
  auto header = ParseImageHeader(png);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->width, 100000);
  EXPECT_EQ(header->height, 100000);
}

TEST(ImageHeaderTest, RefusesNonImageBytes) {
  auto header = ParseImageHeader("<html><body>not found</body></html>");
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(header.status().message().find("not an image"), absl::string_view::npos);
}

TEST(ImageHeaderTest, RefusesEmptyAndTruncatedInput) {
  EXPECT_EQ(ParseImageHeader("").status().code(), absl::StatusCode::kInvalidArgument);
  std::string jpeg = Encode(".jpg", 8, 8);
  EXPECT_EQ(ParseImageHeader(jpeg.substr(0, 10)).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string png = Encode(".png", 8, 8);
  EXPECT_EQ(ParseImageHeader(png.substr(0, 16)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ImageHeaderTest, RefusesZeroDimensions) {
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\0\0\0\0\x10", 24);
  EXPECT_EQ(ParseImageHeader(png).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace conveyor
