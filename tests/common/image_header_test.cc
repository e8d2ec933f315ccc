#include "common/image_header.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/stages/common/hostile_images.h"

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

// The two desync files of issue 10: a fake 16x16 frame hidden behind a
// stuffed FF 00, the real frame 12000x12000 (66 KB variant) or 32768x32768
// (822-byte variant). The parser must not read the fake frame.
TEST(ImageHeaderTest, LibjpegReadsTheRealFrameBehindTheStuffedZero) {
  // What makes the file hostile: libjpeg skips the FF 00 and the COM and
  // decodes the real 64x48 frame, where a length-reading parser sees 16x16.
  const std::string hostile =
      conveyor::hostile::HideBehindStuffedZero(conveyor::hostile::RealJpeg(64, 48), 16, 16);
  cv::Mat decoded = cv::imdecode(cv::Mat(1, static_cast<int>(hostile.size()), CV_8UC1,
                                         const_cast<char*>(hostile.data())),
                                 cv::IMREAD_COLOR);
  EXPECT_EQ(decoded.cols, 64);
  EXPECT_EQ(decoded.rows, 48);
}

TEST(ImageHeaderTest, RefusesStuffedZeroBetweenMarkers) {
  for (uint16_t side : {12000, 32768}) {
    const std::string hostile = conveyor::hostile::HideBehindStuffedZero(
        conveyor::hostile::WithFrameSize(conveyor::hostile::RealJpeg(64, 48), side, side), 16,
        16);
    auto header = ParseImageHeader(hostile);
    ASSERT_FALSE(header.ok()) << "read as " << header->width << "x" << header->height;
    EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(header.status().message().find("0xFF 0x00"), absl::string_view::npos)
        << header.status();
  }
}

TEST(ImageHeaderTest, RefusesGarbageBetweenSegments) {
  std::string jpeg = conveyor::hostile::RealJpeg(16, 16);
  // A non-FF byte where the marker after APP0 should be: libjpeg would skip it.
  const size_t after_app0 = 4 + ((static_cast<uint8_t>(jpeg[4]) << 8) | static_cast<uint8_t>(jpeg[5]));
  std::string garbage = jpeg.substr(0, after_app0) + "x" + jpeg.substr(after_app0);
  auto header = ParseImageHeader(garbage);
  EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(header.status().message().find(absl::StrCat("byte ", after_app0)),
            absl::string_view::npos)
      << header.status();
}

TEST(ImageHeaderTest, RefusesMarkersLibjpegRefuses) {
  const std::string jpeg = conveyor::hostile::RealJpeg(16, 16);
  for (const std::string& bad : {std::string("\xFF\xD8", 2),          // second SOI
                                 std::string("\xFF\xD9", 2),          // EOI before a frame
                                 std::string("\xFF\xDA\x00\x02", 4),  // scan before a frame
                                 std::string("\xFF\x02\x00\x02", 4),  // unknown marker
                                 std::string("\xFF\xC3\x00\x02", 4),  // lossless frame
                                 std::string("\xFF\xFE\x00\x01", 4)}) {  // length below 2
    auto header = ParseImageHeader(jpeg.substr(0, 2) + bad + jpeg.substr(2));
    EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument)
        << static_cast<int>(static_cast<uint8_t>(bad[1]));
  }
}

TEST(ImageHeaderTest, SkipsFillBytesAndStandAloneMarkersAsLibjpegDoes) {
  const std::string jpeg = conveyor::hostile::RealJpeg(40, 30);
  // Fill bytes before a marker, and RST0 / TEM, which have no length.
  const std::string padded =
      jpeg.substr(0, 2) + std::string("\xFF\xFF\xFF\xD0\xFF\x01", 6) + jpeg.substr(2);
  auto header = ParseImageHeader(padded);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->width, 40);
  EXPECT_EQ(header->height, 30);
  // And libjpeg agrees on that file.
  cv::Mat decoded = cv::imdecode(cv::Mat(1, static_cast<int>(padded.size()), CV_8UC1,
                                         const_cast<char*>(padded.data())),
                                 cv::IMREAD_COLOR);
  EXPECT_EQ(decoded.cols, 40);
  EXPECT_EQ(decoded.rows, 30);
}

}  // namespace
}  // namespace conveyor
