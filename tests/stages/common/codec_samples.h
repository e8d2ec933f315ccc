// Images made in the test for the codec tests (image_codec_*test.cc, one
// binary): encoder output, header-only PNGs, Exif orientation blocks, and
// the decode and compare helpers they share.
#ifndef CONVEYOR_TESTS_STAGES_COMMON_CODEC_SAMPLES_H_
#define CONVEYOR_TESTS_STAGES_COMMON_CODEC_SAMPLES_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "stages/common/image_codec.h"

namespace conveyor {

// A smooth gradient with a little structure, so lossy codecs behave as on photos.
inline cv::Mat Gradient(int width, int height) {
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

inline std::string Encode(const cv::Mat& image, const std::string& ext) {
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes));
  return std::string(bytes.begin(), bytes.end());
}

// A PNG that is only a signature and an IHDR chunk declaring width x height:
// no pixel data at all, so anything beyond the header check would fail.
inline std::string PngHeaderOnly(uint32_t width, uint32_t height) {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  png += std::string("\0\0\0\x0dIHDR", 8);
  for (uint32_t v : {width, height}) {
    for (int shift : {24, 16, 8, 0}) png.push_back(static_cast<char>((v >> shift) & 0xFF));
  }
  png += std::string("\x08\x02\0\0\0", 5);  // 8-bit RGB
  png += std::string(4, '\0');              // CRC (never checked: never decoded)
  return png;
}

inline cv::Mat OpenCvDecode(const std::string& bytes, int flags = cv::IMREAD_COLOR) {
  return cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1,
                              const_cast<char*>(bytes.data())),
                      flags);
}

inline absl::StatusOr<cv::Mat> Decode(const std::string& bytes, int reduce = 1) {
  auto header = CheckDeclaredSize(bytes, kDefaultMaxPixels);
  if (!header.ok()) return header.status();
  return DecodeImage(bytes, *header, reduce);
}

// True when both are the same size and type and every sample is equal.
inline bool SamePixels(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() &&
         (a.empty() || cv::norm(a, b, cv::NORM_INF) == 0);
}

// A TIFF structure holding one IFD0 entry, Orientation = `orientation`, in
// big-endian ("MM") or little-endian ("II") byte order.
inline std::string TiffWithOrientation(int orientation, bool little_endian) {
  auto u16 = [&](int v) {
    return little_endian ? std::string{static_cast<char>(v & 0xFF), static_cast<char>(v >> 8)}
                         : std::string{static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)};
  };
  auto u32 = [&](int v) { return little_endian ? u16(v) + u16(0) : u16(0) + u16(v); };
  return std::string(little_endian ? "II" : "MM") + u16(42) + u32(8) + u16(1) +
         u16(0x0112) + u16(3) + u32(1) + u16(orientation) + u16(0) + u32(0);
}

// `jpeg` with an Exif APP1 segment right after SOI.
inline std::string WithExifApp1(const std::string& jpeg, const std::string& tiff) {
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const size_t length = payload.size() + 2;
  std::string app1 = {'\xFF', '\xE1', static_cast<char>(length >> 8),
                      static_cast<char>(length & 0xFF)};
  return jpeg.substr(0, 2) + app1 + payload + jpeg.substr(2);
}

inline uint32_t Crc32(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFF;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320 & (0 - (crc & 1)));
  }
  return ~crc;
}

// `png` with an eXIf chunk inserted right after IHDR (before the image data).
inline std::string WithExifChunk(const std::string& png, const std::string& tiff) {
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
inline size_t JpegMarker(const std::string& jpeg, unsigned char code) {
  for (size_t i = 2; i + 1 < jpeg.size(); ++i) {
    if (static_cast<unsigned char>(jpeg[i]) == 0xFF &&
        static_cast<unsigned char>(jpeg[i + 1]) == code) {
      return i;
    }
  }
  return std::string::npos;
}

}  // namespace conveyor

#endif  // CONVEYOR_TESTS_STAGES_COMMON_CODEC_SAMPLES_H_
