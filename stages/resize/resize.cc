#include "stages/resize/resize.h"

#include <algorithm>
#include <string>

#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_details.h"
#include "common/step_specs.h"

namespace conveyor::stages::resize {
namespace {

using v1::ResizeSpec;

// round(a * b / c) for positive values, without floating point.
int64_t MulDivRound(int64_t a, int64_t b, int64_t c) { return (2 * a * b + c) / (2 * c); }

std::string SizeText(cv::Size size) { return absl::StrCat(size.width, "x", size.height); }

// Scales `source` to fit inside width x height (either may be 0 = free),
// keeping the aspect ratio; the constrained side is exact.
cv::Size FitInside(cv::Size source, int64_t width, int64_t height) {
  const int64_t w = source.width;
  const int64_t h = source.height;
  // Width-limited when the box is relatively narrower than the source.
  bool width_limited = height == 0 || (width != 0 && width * h <= height * w);
  if (width_limited) {
    return cv::Size(static_cast<int>(width),
                    static_cast<int>(std::max<int64_t>(1, MulDivRound(h, width, w))));
  }
  return cv::Size(static_cast<int>(std::max<int64_t>(1, MulDivRound(w, height, h))),
                  static_cast<int>(height));
}

// The centred region of `source` with the aspect ratio width:height.
cv::Rect CoverRegion(cv::Size source, int64_t width, int64_t height) {
  const int64_t w = source.width;
  const int64_t h = source.height;
  if (width * h >= height * w) {  // target relatively wider: keep full width
    int crop_h = static_cast<int>(std::clamp<int64_t>(MulDivRound(w, height, width), 1, h));
    return cv::Rect(0, (source.height - crop_h) / 2, source.width, crop_h);
  }
  int crop_w = static_cast<int>(std::clamp<int64_t>(MulDivRound(h, width, height), 1, w));
  return cv::Rect((source.width - crop_w) / 2, 0, crop_w, source.height);
}

// Maps a rectangle of `full` into an image decoded at reduced size `reduced`.
cv::Rect ScaleRegion(cv::Rect region, cv::Size full, cv::Size reduced) {
  if (full == reduced) return region;
  auto map = [](int64_t v, int64_t from, int64_t to) {
    return static_cast<int>(MulDivRound(v, to, from));
  };
  int x0 = map(region.x, full.width, reduced.width);
  int y0 = map(region.y, full.height, reduced.height);
  int x1 = map(region.x + region.width, full.width, reduced.width);
  int y1 = map(region.y + region.height, full.height, reduced.height);
  x1 = std::clamp(x1, x0 + 1, reduced.width);
  y1 = std::clamp(y1, y0 + 1, reduced.height);
  x0 = std::min(x0, x1 - 1);
  y0 = std::min(y0, y1 - 1);
  return cv::Rect(x0, y0, x1 - x0, y1 - y0);
}

int CeilDiv(int a, int b) { return (a + b - 1) / b; }

}  // namespace

absl::StatusOr<ResizePlan> PlanResize(const ResizeSpec& spec, cv::Size source) {
  if (absl::Status s = CheckResizeSpec("spec", spec); !s.ok()) return s;
  if (source.width <= 0 || source.height <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("source size ", SizeText(source)));
  }
  const ResizeSpec::Fit fit =
      spec.fit() == ResizeSpec::FIT_UNSPECIFIED ? ResizeSpec::CONTAIN : spec.fit();

  ResizePlan plan{cv::Rect(cv::Point(0, 0), source), source};
  switch (fit) {
    case ResizeSpec::FILL:
      plan.output = cv::Size(spec.width(), spec.height());
      break;
    case ResizeSpec::COVER:
      plan.source_region = CoverRegion(source, spec.width(), spec.height());
      plan.output = cv::Size(spec.width(), spec.height());
      break;
    case ResizeSpec::INSIDE: {
      const bool fits = (spec.width() == 0 || source.width <= spec.width()) &&
                        (spec.height() == 0 || source.height <= spec.height());
      plan.output = fits ? source : FitInside(source, spec.width(), spec.height());
      break;
    }
    default:  // CONTAIN
      plan.output = FitInside(source, spec.width(), spec.height());
      break;
  }
  if (plan.output.width > kMaxImageSide || plan.output.height > kMaxImageSide) {
    return WithErrorReason(
        InvalidField("spec", absl::StrCat("want an output of at most ", kMaxImageSide,
                                          " px per side; ", SizeText(source), " resized to width ",
                                          spec.width(), " and height ", spec.height(), " gives ",
                                          SizeText(plan.output))),
        kReasonImageTooLarge);
  }
  return plan;
}

int ChooseShrinkFactor(ResizeSpec::ShrinkOnLoad mode, cv::Size region, cv::Size output) {
  if (mode == ResizeSpec::OFF) return 1;
  const int margin = mode == ResizeSpec::FAST ? 1 : 2;
  for (int n : {8, 4, 2}) {
    // libjpeg rounds reduced sides up; flooring here keeps the bound safe for
    // a region that does not start on a multiple of n.
    if (int64_t{region.width / n} >= int64_t{margin} * output.width &&
        int64_t{region.height / n} >= int64_t{margin} * output.height) {
      return n;
    }
  }
  return 1;
}

absl::Status Resizer::Resize(const v1::ResizeRequest& request, v1::ResizeResponse& response,
                             const std::function<bool()>& cancelled, ResizeStats& stats,
                             absl::Time deadline) const {
  const ResizeSpec& spec = request.spec();
  // The whole spec is checked before the pixels are looked at.
  if (absl::Status s = CheckResizeSpec("spec", spec); !s.ok()) return s;
  const absl::string_view data = request.image().data();
  absl::StatusOr<ImageHeader> header = CheckDeclaredSize(data, options_.max_pixels);
  if (!header.ok()) return header.status();
  absl::StatusOr<Encoding> encoding = ResolveEncoding(spec.output(), header->kind, "spec.output");
  if (!encoding.ok()) return encoding.status();

  cv::Size source(header->width, header->height);
  absl::StatusOr<ResizePlan> plan = PlanResize(spec, source);
  if (!plan.ok()) return plan.status();
  auto check_output_pixels = [&](const ResizePlan& p) -> absl::Status {
    if (int64_t{p.output.width} * p.output.height > options_.max_pixels) {
      return WithErrorReason(
          InvalidField("spec", absl::StrCat("output ", SizeText(p.output), " is above this "
                                            "worker's limit of ", options_.max_pixels,
                                            " pixels (--max-pixels)")),
          kReasonImageTooLarge);
    }
    return absl::OkStatus();
  };
  if (absl::Status s = check_output_pixels(*plan); !s.ok()) return s;

  DecodeLimits limits;
  limits.max_pixels = options_.max_pixels;
  limits.max_scans = options_.max_scans;
  limits.cancelled = cancelled;
  limits.deadline = deadline;
  const bool jpeg = header->kind == ImageKind::kJpeg;
  int scale = jpeg ? ChooseShrinkFactor(spec.shrink_on_load(), plan->source_region.size(),
                                        plan->output)
                   : 1;
  absl::StatusOr<cv::Mat> decoded = DecodeImage(data, *header, limits, scale);
  if (!decoded.ok()) return decoded.status();

  // EXIF orientation may have turned the image a quarter: plan again on the
  // oriented size, and decode again (rare) if that needs a finer scale.
  const cv::Size expected(CeilDiv(source.width, scale), CeilDiv(source.height, scale));
  if (decoded->size() != expected && decoded->cols == expected.height &&
      decoded->rows == expected.width) {
    source = cv::Size(source.height, source.width);
    plan = PlanResize(spec, source);
    if (!plan.ok()) return plan.status();
    if (absl::Status s = check_output_pixels(*plan); !s.ok()) return s;
    const int oriented_scale =
        ChooseShrinkFactor(spec.shrink_on_load(), plan->source_region.size(), plan->output);
    if (oriented_scale < scale) {
      scale = oriented_scale;
      decoded = DecodeImage(data, *header, limits, scale);
      if (!decoded.ok()) return decoded.status();
    }
  }
  stats.input = source;
  stats.decode_scale = scale;
  if (absl::Now() >= deadline) return absl::DeadlineExceededError("deadline passed after decode");
  if (cancelled()) return absl::CancelledError("cancelled after decode");

  const cv::Rect region = ScaleRegion(plan->source_region, source, decoded->size());
  cv::Mat resized;
  try {
    const cv::Mat kept = (*decoded)(region);
    if (kept.size() == plan->output) {
      resized = kept;
    } else {
      const bool shrinking =
          plan->output.width <= kept.cols && plan->output.height <= kept.rows;
      cv::resize(kept, resized, plan->output, 0, 0,
                 shrinking ? cv::INTER_AREA : cv::INTER_CUBIC);
    }
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("OpenCV resize failed: ", e.err));
  }
  decoded->release();  // the full decode is the largest buffer: free it before encoding
  if (cancelled()) return absl::CancelledError("cancelled after resize");

  if (absl::Status s = EncodeInto(resized, *encoding, *response.mutable_image()); !s.ok()) {
    return s;
  }
  stats.output = resized.size();
  return absl::OkStatus();
}

}  // namespace conveyor::stages::resize
