// OpenCV decode and encode shared by the resize and filter stages.
//
// The order every caller follows:
//   1. CheckDeclaredSize: read the declared size from the header (no decode)
//      and refuse decompression bombs and non-image bytes;
//   2. DecodeImage: decode to 8-bit BGR, optionally at 1/2, 1/4 or 1/8 scale
//      for JPEG (libjpeg's DCT scaling: shrink-on-load);
//   3. ResolveEncoding + EncodeImage: write JPEG, PNG or WebP.
//
// Every function catches cv::Exception at the OpenCV call: no exception
// leaves this library. Thread-safe (no shared state).
#ifndef CONVEYOR_STAGES_COMMON_IMAGE_CODEC_H_
#define CONVEYOR_STAGES_COMMON_IMAGE_CODEC_H_

#include <cstdint>
#include <string>

#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "conveyor/v1/stages.pb.h"
#include "stages/common/image_header.h"

namespace conveyor {

// Largest side resize and filter will write, in pixels.
inline constexpr int kMaxOutputSide = 16384;
// Default --max-pixels: the largest declared input (width x height) decoded.
inline constexpr int64_t kDefaultMaxPixels = 100'000'000;
// EncodeOptions.quality when it is 0.
inline constexpr int kDefaultQuality = 85;

// ErrorInfo reasons attached to the INVALID_ARGUMENT errors below.
inline constexpr absl::string_view kReasonImageTooLarge = "IMAGE_TOO_LARGE";
inline constexpr absl::string_view kReasonNotAnImage = "NOT_AN_IMAGE";

// Parses the header of `bytes` and checks width x height <= max_pixels,
// without decoding any pixel. Errors (all INVALID_ARGUMENT naming `field`):
// not a JPEG/PNG/WebP or a truncated header (reason NOT_AN_IMAGE); declared
// size above max_pixels (reason IMAGE_TOO_LARGE).
absl::StatusOr<ImageHeader> CheckDeclaredSize(absl::string_view bytes, int64_t max_pixels,
                                              absl::string_view field = "image.data");

// Decodes `bytes` to 8-bit, 3-channel BGR (alpha is dropped; EXIF orientation
// is applied, so width and height may be swapped against the header).
// `reduce` in {1, 2, 4, 8} decodes a JPEG at 1/reduce scale in libjpeg
// (each side rounded up); it must be 1 for other formats. INVALID_ARGUMENT
// (reason NOT_AN_IMAGE) if OpenCV cannot decode the bytes.
absl::StatusOr<cv::Mat> DecodeImage(absl::string_view bytes, const ImageHeader& header,
                                    int reduce = 1, absl::string_view field = "image.data");

// The output format and quality an EncodeOptions asks for.
struct Encoding {
  ImageKind kind = ImageKind::kJpeg;
  // 1..100 (JPEG/WebP); ignored for PNG.
  int quality = kDefaultQuality;
};

// Applies the defaults (unspecified format keeps `input`; quality 0 means 85)
// and validates. INVALID_ARGUMENT naming `field_prefix`.format / .quality.
absl::StatusOr<Encoding> ResolveEncoding(const v1::EncodeOptions& options, ImageKind input,
                                         absl::string_view field_prefix);

// Encodes a BGR or gray 8-bit image. INTERNAL if OpenCV fails to encode;
// INVALID_ARGUMENT if a side exceeds what the format can store (WebP 16383).
absl::StatusOr<std::string> EncodeImage(const cv::Mat& image, const Encoding& encoding);

// Fills `out` with the encoded bytes, media type and dimensions.
absl::Status EncodeInto(const cv::Mat& image, const Encoding& encoding, v1::Image& out);

}  // namespace conveyor

#endif  // CONVEYOR_STAGES_COMMON_IMAGE_CODEC_H_
