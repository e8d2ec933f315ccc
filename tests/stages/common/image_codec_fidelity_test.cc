// The codec gives what OpenCV's imdecode/imencode gave: Exif orientation,
// PNG pixel formats, WebP round trips, byte-identical encodes, corrupt and
// truncated data.
#include "stages/common/image_codec.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "tests/stages/common/codec_samples.h"

namespace conveyor {
namespace {

// Orientation turns the stored image as TIFF says: 3 = 180 degrees, 6 = 90
// clockwise, 8 = 90 counter-clockwise; every value 1..8 (and a bad one) gives
// exactly what imdecode gave, in either byte order.
TEST(ImageCodecTest, JpegFollowsExifOrientation) {
  const std::string plain = Encode(Gradient(64, 32), ".jpg");
  auto stored = Decode(plain);
  ASSERT_TRUE(stored.ok()) << stored.status();
  auto turned = [&](int orientation) {
    cv::Mat out = stored->clone();
    if (orientation == 3) cv::rotate(out, out, cv::ROTATE_180);
    if (orientation == 6) cv::rotate(out, out, cv::ROTATE_90_CLOCKWISE);
    if (orientation == 8) cv::rotate(out, out, cv::ROTATE_90_COUNTERCLOCKWISE);
    return out;
  };
  for (bool little_endian : {false, true}) {
    for (int orientation = 0; orientation <= 9; ++orientation) {
      const std::string jpeg =
          WithExifApp1(plain, TiffWithOrientation(orientation, little_endian));
      auto image = Decode(jpeg);
      ASSERT_TRUE(image.ok()) << image.status();
      SCOPED_TRACE(testing::Message() << "orientation " << orientation << " little-endian "
                                      << little_endian);
      EXPECT_TRUE(SamePixels(*image, OpenCvDecode(jpeg)));
      if (orientation == 1 || orientation == 3 || orientation == 6 || orientation == 8) {
        EXPECT_TRUE(SamePixels(*image, turned(orientation)));
      }
      if (orientation >= 5 && orientation <= 8) {
        EXPECT_EQ(image->size(), cv::Size(32, 64));
      } else {
        EXPECT_EQ(image->size(), cv::Size(64, 32));
      }
    }
  }
}

TEST(ImageCodecTest, ExifOrientationAppliesAfterScaledDecode) {
  const std::string jpeg =
      WithExifApp1(Encode(Gradient(160, 80), ".jpg"), TiffWithOrientation(6, false));
  auto image = Decode(jpeg, 4);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->size(), cv::Size(20, 40));
  EXPECT_TRUE(SamePixels(*image, OpenCvDecode(jpeg, cv::IMREAD_REDUCED_COLOR_4)));
}

TEST(ImageCodecTest, MalformedExifIsIgnored) {
  const std::string plain = Encode(Gradient(64, 32), ".jpg");
  const std::string tiff = TiffWithOrientation(6, false);
  for (const std::string& bad :
       {tiff.substr(0, 10), tiff.substr(0, 3), std::string("XMP data, not a TIFF header"),
        std::string("MM\0\x2a\xff\xff\xff\xff", 8)}) {
    const std::string jpeg = WithExifApp1(plain, bad);
    auto image = Decode(jpeg);
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->size(), cv::Size(64, 32));
    EXPECT_TRUE(SamePixels(*image, OpenCvDecode(jpeg)));
  }
}

TEST(ImageCodecTest, PngFollowsExifChunkAsOpenCvDid) {
  const std::string plain = Encode(Gradient(24, 12), ".png");
  for (int orientation : {1, 3, 6, 8}) {
    const std::string png = WithExifChunk(plain, TiffWithOrientation(orientation, true));
    auto image = Decode(png);
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_TRUE(SamePixels(*image, OpenCvDecode(png))) << "orientation " << orientation;
  }
}

// Alpha is dropped (not composited), 16-bit keeps the high byte, gray is
// repeated in B, G and R: the same pixels imdecode(IMREAD_COLOR) gave.
TEST(ImageCodecTest, PngInputsDecodeToBgrAsOpenCvDid) {
  cv::Mat bgra(21, 13, CV_8UC4);
  cv::randu(bgra, 0, 256);
  cv::Mat gray(21, 13, CV_8UC1);
  cv::randu(gray, 0, 256);
  cv::Mat bgr16(21, 13, CV_16UC3);
  cv::randu(bgr16, 0, 65536);
  cv::Mat gray16(21, 13, CV_16UC1);
  cv::randu(gray16, 0, 65536);
  cv::Mat bgra16(21, 13, CV_16UC4);
  cv::randu(bgra16, 0, 65536);
  for (const cv::Mat& source : {bgra, gray, bgr16, gray16, bgra16}) {
    const std::string png = Encode(source, ".png");
    auto image = Decode(png);
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->type(), CV_8UC3);
    EXPECT_TRUE(SamePixels(*image, OpenCvDecode(png))) << "type " << source.type();
  }
  // Spot checks of the rules themselves.
  auto from_bgra = Decode(Encode(bgra, ".png"));
  ASSERT_TRUE(from_bgra.ok());
  cv::Vec4b p = bgra.at<cv::Vec4b>(5, 7);
  EXPECT_EQ(from_bgra->at<cv::Vec3b>(5, 7), cv::Vec3b(p[0], p[1], p[2]));
  auto from_gray16 = Decode(Encode(gray16, ".png"));
  ASSERT_TRUE(from_gray16.ok());
  const uchar high = static_cast<uchar>(gray16.at<uint16_t>(3, 4) >> 8);
  EXPECT_EQ(from_gray16->at<cv::Vec3b>(3, 4), cv::Vec3b(high, high, high));
}

TEST(ImageCodecTest, WebpLosslessRoundTripIsExact) {
  const cv::Mat source = Gradient(37, 23);
  std::vector<uchar> bytes;
  ASSERT_TRUE(cv::imencode(".webp", source, bytes, {cv::IMWRITE_WEBP_QUALITY, 101}));
  auto image = Decode(std::string(bytes.begin(), bytes.end()));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_TRUE(SamePixels(*image, source));

  cv::Mat bgra(23, 37, CV_8UC4);
  cv::randu(bgra, 0, 256);
  ASSERT_TRUE(cv::imencode(".webp", bgra, bytes, {cv::IMWRITE_WEBP_QUALITY, 101}));
  const std::string with_alpha(bytes.begin(), bytes.end());
  image = Decode(with_alpha);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->type(), CV_8UC3);
  EXPECT_TRUE(SamePixels(*image, OpenCvDecode(with_alpha)));
}

TEST(ImageCodecTest, WebpLossyRoundTripIsClose) {
  const cv::Mat source = Gradient(128, 96);
  auto bytes = EncodeImage(source, Encoding{ImageKind::kWebp, 90});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto image = Decode(*bytes);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_TRUE(SamePixels(*image, OpenCvDecode(*bytes)));
  EXPECT_GT(cv::PSNR(source, *image), 25);
}

// The encoders write the very bytes imencode wrote with the parameters we
// passed it (same libjpeg-turbo, libpng and libwebp underneath).
TEST(ImageCodecTest, EncodersMatchOpenCvByteForByte) {
  cv::Mat gray(50, 70, CV_8UC1);
  cv::randu(gray, 0, 256);
  for (const cv::Mat& source : {Gradient(211, 97), gray}) {
    for (int quality : {1, 40, 85, 100}) {
      std::vector<uchar> expected;
      ASSERT_TRUE(cv::imencode(".jpg", source, expected, {cv::IMWRITE_JPEG_QUALITY, quality}));
      auto jpeg = EncodeImage(source, Encoding{ImageKind::kJpeg, quality});
      ASSERT_TRUE(jpeg.ok()) << jpeg.status();
      EXPECT_EQ(*jpeg, std::string(expected.begin(), expected.end())) << "jpeg q" << quality;
      ASSERT_TRUE(cv::imencode(".webp", source, expected, {cv::IMWRITE_WEBP_QUALITY, quality}));
      auto webp = EncodeImage(source, Encoding{ImageKind::kWebp, quality});
      ASSERT_TRUE(webp.ok()) << webp.status();
      EXPECT_EQ(*webp, std::string(expected.begin(), expected.end())) << "webp q" << quality;
    }
    std::vector<uchar> expected;
    ASSERT_TRUE(cv::imencode(".png", source, expected, {cv::IMWRITE_PNG_COMPRESSION, 3}));
    auto png = EncodeImage(source, Encoding{ImageKind::kPng, 85});
    ASSERT_TRUE(png.ok()) << png.status();
    EXPECT_EQ(*png, std::string(expected.begin(), expected.end()));
  }
}

void ExpectCorrupt(const std::string& bytes, absl::string_view media_type) {
  auto header = CheckDeclaredSize(bytes, kDefaultMaxPixels);
  ASSERT_TRUE(header.ok()) << header.status();
  auto image = DecodeImage(bytes, *header);
  ASSERT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument) << image.status();
  EXPECT_EQ(ErrorReason(image.status()), kReasonNotAnImage);
  EXPECT_EQ(image.status().message(),
            absl::StrCat("image.data: cannot decode the ", media_type,
                         " data (corrupt or truncated)"));
  EXPECT_TRUE(OpenCvDecode(bytes).empty()) << "imdecode accepted it";
}

TEST(ImageCodecTest, CorruptDataOfEachFormatIsInvalidArgument) {
  const cv::Mat source = Gradient(64, 48);
  const std::string jpeg = Encode(source, ".jpg");
  // Headers intact, no scan at all: libjpeg stops at the missing SOS.
  ExpectCorrupt(jpeg.substr(0, JpegMarker(jpeg, 0xDA)), "image/jpeg");
  // A Huffman table replaced by garbage.
  std::string bad_tables = jpeg;
  const size_t dht = JpegMarker(jpeg, 0xC4);
  ASSERT_NE(dht, std::string::npos);
  for (size_t i = dht + 4; i < dht + 20; ++i) bad_tables[i] = '\xFF';
  ExpectCorrupt(bad_tables, "image/jpeg");

  const std::string png = Encode(source, ".png");
  ExpectCorrupt(png.substr(0, png.size() / 2), "image/png");
  std::string bad_crc = png;
  bad_crc[png.size() / 2] ^= 0x55;  // inside IDAT: its CRC no longer matches
  ExpectCorrupt(bad_crc, "image/png");

  const std::string webp = Encode(source, ".webp");
  ExpectCorrupt(webp.substr(0, webp.size() / 2), "image/webp");
}

// A JPEG cut inside its entropy-coded data still decodes, as imdecode's did
// (libjpeg only warns): the rows the data covered, then mid-gray. imdecode
// filled the image from a buffer libjpeg never wrote; we keep what decoded.
TEST(ImageCodecTest, TruncatedJpegScanDecodesWithGrayRemainder) {
  const std::string jpeg = Encode(Gradient(64, 48), ".jpg");
  const std::string cut = jpeg.substr(0, JpegMarker(jpeg, 0xDA) + 200);
  ASSERT_FALSE(OpenCvDecode(cut).empty());
  auto image = Decode(cut);
  ASSERT_TRUE(image.ok()) << image.status();
  ASSERT_EQ(image->size(), cv::Size(64, 48));
  const cv::Mat gray_row(1, 64, CV_8UC3, cv::Scalar::all(128));
  EXPECT_GT(cv::norm(image->row(0), gray_row, cv::NORM_INF), 50);  // decoded data
  EXPECT_EQ(cv::norm(image->row(47), gray_row, cv::NORM_INF), 0);
}

}  // namespace
}  // namespace conveyor
