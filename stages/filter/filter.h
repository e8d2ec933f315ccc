// The filter stage's logic, without gRPC: check the spec (CheckFilterSpec,
// common/step_specs.h: the rules the orchestrator applies at submit), then
// decode -> apply each operation -> encode.
//
// Errors (absl codes; the service maps them to gRPC):
//   INVALID_ARGUMENT  a bad op or parameter, named like
//                     "spec.ops[2].gaussian_blur.sigma: want (0, 100], got 0";
//                     no ops, more than 32, or an empty op; non-image bytes
//                     (reason NOT_AN_IMAGE); a declared size above
//                     --max-pixels or 16384 px a side (reason IMAGE_TOO_LARGE,
//                     refused before any decode); a header and decoder that
//                     disagree (HEADER_MISMATCH); a JPEG with more than
//                     --max-scans scans (TOO_MANY_SCANS);
//   CANCELLED         the caller gave up (checked in the decode and between
//                     operations);
//   DEADLINE_EXCEEDED the call's deadline passed during the decode;
//   INTERNAL          OpenCV failed.
#ifndef CONVEYOR_STAGES_FILTER_FILTER_H_
#define CONVEYOR_STAGES_FILTER_FILTER_H_

#include <cstdint>
#include <functional>

#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/step_specs.h"
#include "conveyor/v1/stages.pb.h"
#include "stages/common/image_codec.h"

namespace conveyor::stages::filter {

// Applies one validated op to an 8-bit BGR image, in place (the result is
// 8-bit BGR too; grayscale and edges keep three equal channels so JPEG and
// WebP output work). INTERNAL if OpenCV throws.
absl::Status ApplyFilterOp(const v1::FilterOp& op, cv::Mat& image);

struct FilterOptions {
  // Largest declared input, in pixels (width x height).
  int64_t max_pixels = kDefaultMaxPixels;
  // --max-scans: most scans of a progressive JPEG decoded.
  int max_scans = kDefaultMaxScans;
};

// Facts about one call, for the log line.
struct FilterStats {
  cv::Size size;  // image size (decoded, oriented)
  int ops = 0;    // operations applied
};

// Thread-safe: holds only its options.
class Filterer {
 public:
  explicit Filterer(FilterOptions options) : options_(options) {}

  // Checks request.spec() with CheckFilterSpec("spec", ...), then applies its
  // ops in order to request.image() into response.image(). `cancelled` and `deadline` are checked inside the
  // decode (see DecodeLimits), then `cancelled` between ops and before encode.
  absl::Status Filter(const v1::FilterRequest& request, v1::FilterResponse& response,
                      const std::function<bool()>& cancelled, FilterStats& stats,
                      absl::Time deadline = absl::InfiniteFuture()) const;

 private:
  FilterOptions options_;
};

}  // namespace conveyor::stages::filter

#endif  // CONVEYOR_STAGES_FILTER_FILTER_H_
