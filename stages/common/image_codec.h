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
//      for JPEG (libjpeg's DCT scaling: shrink-on-load), checking the
//      decoder's own size against the header and the limits before
//      allocating, and bounding the work (JPEG scans, cancellation, deadline);
//   3. ResolveEncoding + EncodeImage: write JPEG, PNG or WebP.
//
// Every function catches cv::Exception at the OpenCV call: no exception
// leaves this library. Thread-safe (no shared state); codec warnings are
// swallowed, never printed.
#ifndef CONVEYOR_STAGES_COMMON_IMAGE_CODEC_H_
#define CONVEYOR_STAGES_COMMON_IMAGE_CODEC_H_

#include <cstdint>
#include <functional>
#include <string>

#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "conveyor/v1/stages.pb.h"
#include "common/image_header.h"
#include "common/step_specs.h"

namespace conveyor {

// The largest side decoded and written is kMaxImageSide, and EncodeOptions'
// rules are CheckEncodeOptions (common/step_specs.h), as the orchestrator
// checks them at submit.

// Default --max-pixels: the largest declared input (width x height) decoded.
inline constexpr int64_t kDefaultMaxPixels = 100'000'000;
// Default --max-scans: the most scans of a progressive JPEG decoded (the
// order of TurboJPEG's limit; real encoders write about 10).
inline constexpr int kDefaultMaxScans = 256;

// ErrorInfo reasons attached to the INVALID_ARGUMENT errors below.
inline constexpr absl::string_view kReasonImageTooLarge = "IMAGE_TOO_LARGE";
inline constexpr absl::string_view kReasonNotAnImage = "NOT_AN_IMAGE";
// The header parser (image_header.h) and the codec read different sizes.
inline constexpr absl::string_view kReasonHeaderMismatch = "HEADER_MISMATCH";
// A progressive JPEG with more scans than DecodeLimits.max_scans.
inline constexpr absl::string_view kReasonTooManyScans = "TOO_MANY_SCANS";

// What one decode may cost, checked by the decoder itself as it reads.
struct DecodeLimits {
  // The decoder's own width x height (read by jpeg_read_header,
  // png_read_info, WebPGetFeatures) must be at most this...
  int64_t max_pixels = kDefaultMaxPixels;
  // ...and each side at most this.
  int32_t max_side = kMaxImageSide;
  // JPEG scans (SOS markers) read before the decode is refused.
  int max_scans = kDefaultMaxScans;
  // Polled between units of work (JPEG: every iMCU row and scan; PNG: every
  // 64 rows; WebP: every 64 KiB of input); true stops the decode with
  // CANCELLED. Empty: never cancelled.
  std::function<bool()> cancelled;
  // Past it the decode stops with DEADLINE_EXCEEDED.
  absl::Time deadline = absl::InfiniteFuture();
};

// Parses the header of `bytes` and checks width x height <= max_pixels and
// each side <= max_side, without decoding any pixel. Errors (all
// INVALID_ARGUMENT naming `field`): not a JPEG/PNG/WebP, a truncated header
// or bytes between JPEG markers (reason NOT_AN_IMAGE); declared size above
// the limits (reason IMAGE_TOO_LARGE).
absl::StatusOr<ImageHeader> CheckDeclaredSize(absl::string_view bytes, int64_t max_pixels,
                                              absl::string_view field = "image.data",
                                              int32_t max_side = kMaxImageSide);

// Decodes `bytes` to 8-bit, 3-channel BGR (alpha is dropped, not composited;
// 16-bit PNG keeps the high byte; gray becomes three equal channels). The EXIF
// orientation of a JPEG (first APP1) or PNG (eXIf chunk) is applied, so width
// and height may be swapped against the header.
// `reduce` in {1, 2, 4, 8} decodes a JPEG at 1/reduce scale in libjpeg
// (each side rounded up); it must be 1 for other formats (INTERNAL otherwise).
// `header` is CheckDeclaredSize's result for the same bytes: the decoder's
// own size must equal it. Errors, all before any pixel buffer is allocated
// unless said otherwise:
//   INVALID_ARGUMENT naming `field`: the codec cannot decode the bytes
//     (reason NOT_AN_IMAGE; may be mid-decode); the decoder's size is above
//     limits.max_pixels / max_side (IMAGE_TOO_LARGE) or differs from
//     `header` (HEADER_MISMATCH); more than limits.max_scans JPEG scans
//     (TOO_MANY_SCANS, mid-decode);
//   CANCELLED / DEADLINE_EXCEEDED: limits.cancelled / limits.deadline, mid-decode.
// A plain function of its arguments (the fuzz targets call it directly).
absl::StatusOr<cv::Mat> DecodeImage(absl::string_view bytes, const ImageHeader& header,
                                    const DecodeLimits& limits, int reduce = 1,
                                    absl::string_view field = "image.data");
// The same with default DecodeLimits.
absl::StatusOr<cv::Mat> DecodeImage(absl::string_view bytes, const ImageHeader& header,
                                    int reduce = 1, absl::string_view field = "image.data");

// The output format and quality an EncodeOptions asks for.
struct Encoding {
  ImageKind kind = ImageKind::kJpeg;
  // 1..100 (JPEG/WebP); ignored for PNG.
  int quality = kDefaultQuality;
};

// Validates (CheckEncodeOptions) and applies the defaults (unspecified
// format keeps `input`; quality 0 means kDefaultQuality). INVALID_ARGUMENT naming `field_prefix`.format / .quality.
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
