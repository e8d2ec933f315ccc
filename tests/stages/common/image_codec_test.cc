#include "stages/common/image_codec.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "tests/stages/common/hostile_images.h"

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

cv::Mat OpenCvDecode(const std::string& bytes, int flags = cv::IMREAD_COLOR) {
  return cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1,
                              const_cast<char*>(bytes.data())),
                      flags);
}

absl::StatusOr<cv::Mat> Decode(const std::string& bytes, int reduce = 1) {
  auto header = CheckDeclaredSize(bytes, kDefaultMaxPixels);
  if (!header.ok()) return header.status();
  return DecodeImage(bytes, *header, reduce);
}

// True when both are the same size and type and every sample is equal.
bool SamePixels(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() &&
         (a.empty() || cv::norm(a, b, cv::NORM_INF) == 0);
}

// A TIFF structure holding one IFD0 entry, Orientation = `orientation`, in
// big-endian ("MM") or little-endian ("II") byte order.
std::string TiffWithOrientation(int orientation, bool little_endian) {
  auto u16 = [&](int v) {
    return little_endian ? std::string{static_cast<char>(v & 0xFF), static_cast<char>(v >> 8)}
                         : std::string{static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)};
  };
  auto u32 = [&](int v) { return little_endian ? u16(v) + u16(0) : u16(0) + u16(v); };
  return std::string(little_endian ? "II" : "MM") + u16(42) + u32(8) + u16(1) +
         u16(0x0112) + u16(3) + u32(1) + u16(orientation) + u16(0) + u32(0);
}

// `jpeg` with an Exif APP1 segment right after SOI.
std::string WithExifApp1(const std::string& jpeg, const std::string& tiff) {
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const size_t length = payload.size() + 2;
  std::string app1 = {'\xFF', '\xE1', static_cast<char>(length >> 8),
                      static_cast<char>(length & 0xFF)};
  return jpeg.substr(0, 2) + app1 + payload + jpeg.substr(2);
}

uint32_t Crc32(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFF;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320 & (0 - (crc & 1)));
  }
  return ~crc;
}

// `png` with an eXIf chunk inserted right after IHDR (before the image data).
std::string WithExifChunk(const std::string& png, const std::string& tiff) {
  std::string chunk;
  for (int shift : {24, 16, 8, 0}) chunk.push_back(static_cast<char>((tiff.size() >> shift) & 0xFF));
  const std::string typed = "eXIf" + tiff;
  const uint32_t crc = Crc32(typed);
  chunk += typed;
  for (int shift : {24, 16, 8, 0}) chunk.push_back(static_cast<char>((crc >> shift) & 0xFF));
  constexpr size_t kAfterIhdr = 8 + 25;  // signature + IHDR chunk
  return png.substr(0, kAfterIhdr) + chunk + png.substr(kAfterIhdr);
}

// Offset of the first marker `code` (0xFF code) in a JPEG, npos if none.
size_t JpegMarker(const std::string& jpeg, unsigned char code) {
  for (size_t i = 2; i + 1 < jpeg.size(); ++i) {
    if (static_cast<unsigned char>(jpeg[i]) == 0xFF &&
        static_cast<unsigned char>(jpeg[i + 1]) == code) {
      return i;
    }
  }
  return std::string::npos;
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

// --- hostile input (issue 10) ---------------------------------------------------

using conveyor::hostile::HideBehindStuffedZero;
using conveyor::hostile::RealJpeg;
using conveyor::hostile::ScanBomb;
using conveyor::hostile::WithFrameSize;

// Peak resident set of this process, in bytes.
int64_t PeakRssBytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return int64_t{usage.ru_maxrss} * 1024;
}

TEST(ImageCodecTest, DesyncFilesAreRefusedAtTheHeader) {
  for (uint16_t side : {12000, 32768}) {
    const std::string hostile =
        HideBehindStuffedZero(WithFrameSize(RealJpeg(64, 48), side, side), 16, 16);
    auto header = CheckDeclaredSize(hostile, kDefaultMaxPixels);
    EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument) << side;
    EXPECT_EQ(ErrorReason(header.status()), kReasonNotAnImage) << header.status();
  }
}

// The decoder's own frame size is checked after jpeg_read_header, whatever
// the header check said: a file that gets past the parser still cannot make
// the decoder allocate 3 GB.
TEST(ImageCodecTest, DecoderSizeAboveTheLimitsIsRefusedBeforeAllocating) {
  const int64_t peak_before = PeakRssBytes();
  for (uint16_t side : {12000, 32768}) {  // 144 MP > --max-pixels; 32768 > 16384 a side
    const std::string bomb = WithFrameSize(RealJpeg(64, 48), side, side);
    auto image = DecodeImage(bomb, ImageHeader{ImageKind::kJpeg, 16, 16});
    EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument) << side;
    EXPECT_EQ(ErrorReason(image.status()), kReasonImageTooLarge) << image.status();
    EXPECT_NE(image.status().message().find(absl::StrCat(side, "x", side)), std::string::npos)
        << image.status();
  }
  // A decode of either would have touched 432 MB or 3 GB of pixels.
  EXPECT_LT(PeakRssBytes() - peak_before, int64_t{64} << 20);
}

TEST(ImageCodecTest, DecoderAndHeaderMustAgree) {
  const std::string jpeg = RealJpeg(64, 48);
  auto image = DecodeImage(jpeg, ImageHeader{ImageKind::kJpeg, 16, 16});
  EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(image.status()), kReasonHeaderMismatch) << image.status();
  EXPECT_NE(image.status().message().find("64x48"), std::string::npos) << image.status();

  const std::string png = Encode(Gradient(30, 20), ".png");
  image = DecodeImage(png, ImageHeader{ImageKind::kPng, 20, 30});
  EXPECT_EQ(ErrorReason(image.status()), kReasonHeaderMismatch) << image.status();

  const std::string webp = Encode(Gradient(30, 20), ".webp");
  image = DecodeImage(webp, ImageHeader{ImageKind::kWebp, 31, 20});
  EXPECT_EQ(ErrorReason(image.status()), kReasonHeaderMismatch) << image.status();
}

TEST(ImageCodecTest, DecoderSideLimitAppliesToEachFormat) {
  DecodeLimits limits;
  limits.max_side = 25;
  for (const char* ext : {".jpg", ".png", ".webp"}) {
    const std::string bytes = Encode(Gradient(30, 20), ext);
    auto header = CheckDeclaredSize(bytes, kDefaultMaxPixels);
    ASSERT_TRUE(header.ok()) << header.status();
    auto image = DecodeImage(bytes, *header, limits);
    EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument) << ext;
    EXPECT_EQ(ErrorReason(image.status()), kReasonImageTooLarge) << ext << image.status();
  }
}

TEST(ImageCodecTest, ScanBombIsRefusedWithTooManyScans) {
  const std::string bomb = ScanBomb(256, 256, 10000);
  auto header = CheckDeclaredSize(bomb, kDefaultMaxPixels);
  ASSERT_TRUE(header.ok()) << header.status();
  auto image = DecodeImage(bomb, *header, DecodeLimits{});
  EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(image.status()), kReasonTooManyScans) << image.status();
  EXPECT_NE(image.status().message().find("256"), std::string::npos) << image.status();
}

TEST(ImageCodecTest, ScansUpToTheLimitDecode) {
  // libjpeg's simple progression writes 10 scans for a color image.
  const std::string progressive = RealJpeg(64, 48, /*progressive=*/true);
  auto header = CheckDeclaredSize(progressive, kDefaultMaxPixels);
  ASSERT_TRUE(header.ok()) << header.status();
  DecodeLimits limits;
  limits.max_scans = 10;
  auto image = DecodeImage(progressive, *header, limits);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->size(), cv::Size(64, 48));
  limits.max_scans = 9;
  EXPECT_EQ(ErrorReason(DecodeImage(progressive, *header, limits).status()), kReasonTooManyScans);
  // 100 empty scans more stay under the default of 256: decoded, not refused.
  const std::string padded = ScanBomb(64, 48, 100);
  auto padded_header = CheckDeclaredSize(padded, kDefaultMaxPixels);
  ASSERT_TRUE(padded_header.ok()) << padded_header.status();
  EXPECT_TRUE(DecodeImage(padded, *padded_header, DecodeLimits{}).ok());
}

TEST(ImageCodecTest, CancellationStopsEachDecoderPromptly) {
  // Noise, so that the WebP is several of the decoder's 64 KiB input chunks.
  cv::Mat noise(512, 512, CV_8UC3);
  cv::randu(noise, cv::Scalar::all(0), cv::Scalar::all(255));
  for (const std::string& bytes :
       {ScanBomb(512, 512, 200), Encode(noise, ".png"), Encode(noise, ".webp")}) {
    auto header = CheckDeclaredSize(bytes, kDefaultMaxPixels);
    ASSERT_TRUE(header.ok()) << header.status();
    int polls = 0;
    DecodeLimits limits;
    limits.cancelled = [&polls] { return ++polls >= 2; };
    auto image = DecodeImage(bytes, *header, limits);
    EXPECT_EQ(image.status().code(), absl::StatusCode::kCancelled)
        << MediaTypeOf(header->kind) << " " << image.status();
    // Stopped at the poll that saw the cancellation, not at the end.
    EXPECT_EQ(polls, 2) << MediaTypeOf(header->kind);
  }
}

TEST(ImageCodecTest, PassedDeadlineStopsEachDecoder) {
  for (const std::string& bytes :
       {ScanBomb(64, 64, 10), Encode(Gradient(64, 64), ".png"), Encode(Gradient(64, 64), ".webp")}) {
    auto header = CheckDeclaredSize(bytes, kDefaultMaxPixels);
    ASSERT_TRUE(header.ok()) << header.status();
    DecodeLimits limits;
    limits.deadline = absl::Now() - absl::Seconds(1);
    EXPECT_EQ(DecodeImage(bytes, *header, limits).status().code(),
              absl::StatusCode::kDeadlineExceeded)
        << MediaTypeOf(header->kind);
  }
}

TEST(ImageCodecTest, DeclaredSideAboveTheCapIsRefusedBeforeDecoding) {
  auto header = CheckDeclaredSize(PngHeaderOnly(20000, 1), kDefaultMaxPixels);
  EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(header.status()), kReasonImageTooLarge) << header.status();
}

}  // namespace
}  // namespace conveyor
