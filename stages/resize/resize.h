// The resize stage's logic, without gRPC: geometry of the four fit modes,
// the JPEG shrink-on-load factor, and decode -> resize -> encode.
//
// Errors (absl codes; the service maps them to gRPC):
//   INVALID_ARGUMENT  a bad spec field (BadRequest naming it), non-image or
//                     undecodable bytes (reason NOT_AN_IMAGE), a declared or
//                     requested size above --max-pixels / 16384 px per side
//                     (reason IMAGE_TOO_LARGE; refused before any decode);
//                     a header and decoder that disagree (HEADER_MISMATCH);
//                     a JPEG with more than --max-scans scans (TOO_MANY_SCANS);
//   CANCELLED         the caller gave up (checked during the decode too);
//   DEADLINE_EXCEEDED the call's deadline passed during the decode;
//   INTERNAL          OpenCV failed to encode.
#ifndef CONVEYOR_STAGES_RESIZE_RESIZE_H_
#define CONVEYOR_STAGES_RESIZE_RESIZE_H_

#include <cstdint>
#include <functional>

#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "conveyor/v1/stages.pb.h"
#include "stages/common/image_codec.h"

namespace conveyor::stages::resize {

// What to do with a source of a given size.
struct ResizePlan {
  // The part of the source that is kept, in source pixels: the whole image,
  // or for COVER the centred region with the target's aspect ratio.
  cv::Rect source_region;
  // The output size; `source_region` is scaled to exactly this.
  cv::Size output;
};

// Checks `spec` (CheckResizeSpec("spec", ...), common/step_specs.h: the rules
// the orchestrator applies at submit) and plans the
// resize of a `source`-sized image. Cropping in source coordinates (rather
// than scaling then cropping) keeps COVER from allocating a large
// intermediate. INVALID_ARGUMENT naming the field, or "spec" when a derived
// side would exceed kMaxImageSide.
absl::StatusOr<ResizePlan> PlanResize(const v1::ResizeSpec& spec, cv::Size source);

// The JPEG decode reduction N in {1, 2, 4, 8} for scaling `region` (source
// pixels) down to `output`:
//   QUALITY (and UNSPECIFIED): largest N keeping the decoded region >= 2x the
//                              output on both sides (libvips's rule);
//   FAST:                      largest N keeping it >= the output;
//   OFF:                       1.
int ChooseShrinkFactor(v1::ResizeSpec::ShrinkOnLoad mode, cv::Size region, cv::Size output);

struct ResizeOptions {
  // Largest declared input and largest output, in pixels (width x height).
  int64_t max_pixels = kDefaultMaxPixels;
  // --max-scans: most scans of a progressive JPEG decoded.
  int max_scans = kDefaultMaxScans;
};

// Facts about one call, for the log line.
struct ResizeStats {
  cv::Size input;   // declared size (as oriented after decode)
  cv::Size output;  // encoded size
  int decode_scale = 1;  // N of the shrink-on-load decode (1 = full)
};

// Thread-safe: holds only its options.
class Resizer {
 public:
  explicit Resizer(ResizeOptions options) : options_(options) {}

  // Resizes request.image() per request.spec() into response.image().
  // `cancelled` and `deadline` are checked inside the decode (see
  // DecodeLimits) and between decode, resize and encode.
  absl::Status Resize(const v1::ResizeRequest& request, v1::ResizeResponse& response,
                      const std::function<bool()>& cancelled, ResizeStats& stats,
                      absl::Time deadline = absl::InfiniteFuture()) const;

 private:
  ResizeOptions options_;
};

}  // namespace conveyor::stages::resize

#endif  // CONVEYOR_STAGES_RESIZE_RESIZE_H_
