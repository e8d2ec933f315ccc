// Hostile image files made in the test from a real encoder's output: the
// header/decoder desync through a stuffed FF 00, and the progressive-JPEG
// scan bomb. Header-only, for the codec, header and worker tests.
#ifndef CONVEYOR_TESTS_STAGES_COMMON_HOSTILE_IMAGES_H_
#define CONVEYOR_TESTS_STAGES_COMMON_HOSTILE_IMAGES_H_

#include <cstdint>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

namespace conveyor::hostile {

// A real JPEG of width x height (random pixels, so the entropy data is real).
inline std::string RealJpeg(int width, int height, bool progressive = false) {
  cv::Mat image(height, width, CV_8UC3);
  cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
  std::vector<uchar> bytes;
  std::vector<int> params = {cv::IMWRITE_JPEG_QUALITY, 90};
  if (progressive) params.insert(params.end(), {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
  cv::imencode(".jpg", image, bytes, params);
  return std::string(bytes.begin(), bytes.end());
}

// Offset of the first SOF0/SOF2 marker (FF C0 / FF C2) in a well-formed
// JPEG, walking its segments; npos if none.
inline size_t FrameHeaderOffset(const std::string& jpeg) {
  size_t at = 2;
  while (at + 4 <= jpeg.size() && static_cast<uint8_t>(jpeg[at]) == 0xFF) {
    const uint8_t marker = static_cast<uint8_t>(jpeg[at + 1]);
    if (marker == 0xC0 || marker == 0xC2) return at;
    const size_t length = (static_cast<uint8_t>(jpeg[at + 2]) << 8) |
                          static_cast<uint8_t>(jpeg[at + 3]);
    at += 2 + length;
  }
  return std::string::npos;
}

// `jpeg` with its frame header declaring width x height instead. libjpeg
// decodes such a file: the entropy data runs out and the rest of the (huge)
// image is filled with gray, so the cost is the declared size, not the bytes.
inline std::string WithFrameSize(std::string jpeg, uint16_t width, uint16_t height) {
  const size_t sof = FrameHeaderOffset(jpeg);
  jpeg[sof + 5] = static_cast<char>(height >> 8);
  jpeg[sof + 6] = static_cast<char>(height & 0xFF);
  jpeg[sof + 7] = static_cast<char>(width >> 8);
  jpeg[sof + 8] = static_cast<char>(width & 0xFF);
  return jpeg;
}

// The desync of issue 10: SOI, then "FF 00 00 06", then a COM segment whose
// payload is a fake 8-bit 3-component SOF0 of fake_width x fake_height, then
// the rest of `jpeg` after its SOI.
//  - libjpeg discards FF 00 as stuffing and the non-FF bytes 00 06 as
//    garbage (warnings only), skips the COM and reads `jpeg`'s real frame.
//  - A parser that takes FF 00 for a marker with a length reads 00 06 as its
//    length, lands on the COM payload and reads the fake frame.
inline std::string HideBehindStuffedZero(const std::string& jpeg, uint16_t fake_width,
                                         uint16_t fake_height) {
  const std::string fake_sof = {
      '\xFF', '\xC0', '\x00', '\x11', '\x08',
      static_cast<char>(fake_height >> 8), static_cast<char>(fake_height & 0xFF),
      static_cast<char>(fake_width >> 8), static_cast<char>(fake_width & 0xFF),
      '\x03', '\x01', '\x22', '\x00', '\x02', '\x11', '\x01', '\x03', '\x11', '\x01'};
  std::string out("\xFF\xD8", 2);
  out += std::string("\xFF\x00\x00\x06", 4);  // 2 + 2 + 6 lands at offset 10
  const size_t com_length = 2 + fake_sof.size();
  out += {'\xFF', '\xFE', static_cast<char>(com_length >> 8),
          static_cast<char>(com_length & 0xFF)};
  out += fake_sof;  // starts at offset 10
  out += jpeg.substr(2);
  return out;
}

// A progressive JPEG of width x height followed by `extra_scans` empty DC
// scans of its first component (SOS and no entropy data) before EOI. libjpeg
// only warns about each ("bogus progression", "hit marker") and runs a pass
// over every block for each: the CPU cost grows with the scan count while the
// file grows by 10 bytes a scan.
inline std::string ScanBomb(int width, int height, int extra_scans) {
  std::string jpeg = RealJpeg(width, height, /*progressive=*/true);
  const std::string eoi("\xFF\xD9", 2);
  if (jpeg.size() >= 2 && jpeg.compare(jpeg.size() - 2, 2, eoi) == 0) jpeg.resize(jpeg.size() - 2);
  // Ls=8, Ns=1, Cs=1 (libjpeg numbers components from 1), Td/Ta=0, Ss=0,
  // Se=0, Ah/Al=0.
  const std::string empty_scan("\xFF\xDA\x00\x08\x01\x01\x00\x00\x00\x00", 10);
  jpeg.reserve(jpeg.size() + empty_scan.size() * static_cast<size_t>(extra_scans) + 2);
  for (int i = 0; i < extra_scans; ++i) jpeg += empty_scan;
  return jpeg + eoi;
}

}  // namespace conveyor::hostile

#endif  // CONVEYOR_TESTS_STAGES_COMMON_HOSTILE_IMAGES_H_
