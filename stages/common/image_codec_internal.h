// What the codec files of conveyor_image_codec share (image_codec.cc: the
// public API, the decode guard and EXIF; image_codec_{jpeg,png,webp}.cc: one
// library each). Private to the library: include only from those files.
#ifndef CONVEYOR_STAGES_COMMON_IMAGE_CODEC_INTERNAL_H_
#define CONVEYOR_STAGES_COMMON_IMAGE_CODEC_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <opencv2/core.hpp>
#include <string>

#include "absl/strings/string_view.h"
#include "common/image_header.h"
#include "stages/common/image_codec.h"

namespace conveyor::codec_internal {

// Why a decode stopped early; the status is built once the codec's state
// (and its longjmp) is left behind.
enum class DecodeStop {
  kNone,
  kCorrupt,
  kTooLarge,
  kMismatch,
  kTooManyScans,
  kCancelled,
  kDeadline
};

// What a decoder found and why it stopped, filled in by the codec paths.
struct DecodeReport {
  DecodeStop stop = DecodeStop::kNone;
  int64_t width = 0;  // the decoder's own size, once read
  int64_t height = 0;
  int scans = 0;  // JPEG scans seen when refused
};

// The decoder's own width x height, checked before a pixel is allocated:
// inside `limits` (and OpenCV's own caps) and equal to `header`. Records the
// size in `report`.
DecodeStop CheckDecoderSize(int64_t width, int64_t height, const ImageHeader& header,
                            const DecodeLimits& limits, DecodeReport& report);

// Polled between units of decode work (JPEG iMCU rows and scans, PNG rows,
// WebP input chunks): the deadline, then cancellation.
DecodeStop CheckCallState(const DecodeLimits& limits);

// The TIFF Orientation tag of IFD0 in `tiff` (the bytes after "Exif\0\0" in a
// JPEG APP1, or a PNG eXIf chunk), or 1 (no change). Reads as OpenCV 4.6's
// ExifReader does, so images turn exactly as imdecode turned them: byte order
// little-endian only for "II" (anything else reads big-endian), magic 42, the
// first Orientation entry wins, its SHORT value is taken whatever the declared
// type, and a read past the end ends the parse keeping what was found.
int ExifOrientation(const uint8_t* tiff, size_t size);

// The decoders: each decodes `bytes` (whose `header` CheckDeclaredSize read)
// into 8UC3 BGR `out` under `limits`, and returns false when it stopped
// early, `report` saying why (kNone or kCorrupt: the codec could not decode
// the bytes). JPEG and PNG set `orientation` to the EXIF value (1 if none).
// May throw cv::Exception or std::bad_alloc from cv::Mat::create.
bool DecodeJpeg(absl::string_view bytes, const ImageHeader& header, int reduce,
                const DecodeLimits& limits, DecodeReport& report, int& orientation, cv::Mat& out);
bool DecodePng(absl::string_view bytes, const ImageHeader& header, const DecodeLimits& limits,
               DecodeReport& report, int& orientation, cv::Mat& out);
bool DecodeWebp(absl::string_view bytes, const ImageHeader& header, const DecodeLimits& limits,
                DecodeReport& report, cv::Mat& out);

// The encoders: `image` is 8UC1 or 8UC3 (BGR), `quality` 1..100; the bytes
// are appended to `out`. False if the codec failed.
bool EncodeJpeg(const cv::Mat& image, int quality, std::string& out);
bool EncodePng(const cv::Mat& image, std::string& out);
bool EncodeWebp(const cv::Mat& image, int quality, std::string& out);

}  // namespace conveyor::codec_internal

#endif  // CONVEYOR_STAGES_COMMON_IMAGE_CODEC_INTERNAL_H_
