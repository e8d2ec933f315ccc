// JPEG, PNG and WebP decode and encode shared by the resize and filter stages,
// with libjpeg-turbo, libpng and libwebp called directly: Debian's
// libopencv_imgcodecs maps ~116 libraries (GDAL, poppler, ...) into every
// worker and keeps idle RSS above 30 MB (docs/benchmarks.md). The results are
// those of OpenCV 4.6's imdecode/imencode with the flags we used.
//
// The order every caller follows:
//   1. CheckDeclaredSize: read the declared size from the header (no decode)
//      and refuse decompression bombs and non-image bytes;
//   2. DecodeImage: decode to 8-bit BGR, optionally at 1/2, 1/4 or 1/8 scale
//      for JPEG (libjpeg's DCT scaling: shrink-on-load);
//   3. ResolveEncoding + EncodeImage: write JPEG, PNG or WebP.
//
// Every function catches cv::Exception at the OpenCV call: no exception
// leaves this library. Thread-safe (no shared state); codec warnings are
// swallowed, never printed.
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

// Decodes `bytes` to 8-bit, 3-channel BGR (alpha is dropped, not composited;
// 16-bit PNG keeps the high byte; gray becomes three equal channels). The EXIF
// orientation of a JPEG (first APP1) or PNG (eXIf chunk) is applied, so width
// and height may be swapped against the header.
// `reduce` in {1, 2, 4, 8} decodes a JPEG at 1/reduce scale in libjpeg
// (each side rounded up); it must be 1 for other formats (INTERNAL otherwise).
// INVALID_ARGUMENT (reason NOT_AN_IMAGE) if the codec cannot decode the bytes.
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

// Encodes a BGR or gray image (other depths are saturated to 8 bits): JPEG
// baseline 4:2:0 at `quality`, PNG at zlib level 3, WebP lossy at `quality`.
// INTERNAL if the codec fails or the image has 2 or 4 channels;
// INVALID_ARGUMENT if a side exceeds what the format can store (WebP 16383).
absl::StatusOr<std::string> EncodeImage(const cv::Mat& image, const Encoding& encoding);

// Fills `out` with the encoded bytes, media type and dimensions.
absl::Status EncodeInto(const cv::Mat& image, const Encoding& encoding, v1::Image& out);

}  // namespace conveyor

#endif  // CONVEYOR_STAGES_COMMON_IMAGE_CODEC_H_
