#include "stages/filter/filter.h"

#include <cmath>
#include <string>

#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "common/step_specs.h"

namespace conveyor::stages::filter {
namespace {

using v1::FilterOp;

constexpr double kDefaultSharpenSigma = 1.0;

void ToGray3(cv::Mat& image) {
  cv::Mat gray;
  cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
  cv::cvtColor(gray, image, cv::COLOR_GRAY2BGR);
}

// The classic sepia matrix (rows R', G', B' over R, G, B), reordered for
// OpenCV's BGR channel order.
const cv::Matx33f kSepiaBgr(0.131f, 0.534f, 0.272f,   // B' from B, G, R
                            0.168f, 0.686f, 0.349f,   // G'
                            0.189f, 0.769f, 0.393f);  // R'

}  // namespace

absl::Status ApplyFilterOp(const FilterOp& op, cv::Mat& image) {
  try {
    switch (op.op_case()) {
      case FilterOp::kGrayscale:
        ToGray3(image);
        break;
      case FilterOp::kGaussianBlur:
        cv::GaussianBlur(image, image, cv::Size(), op.gaussian_blur().sigma());
        break;
      case FilterOp::kSharpen: {
        // Unsharp mask: out = in + amount * (in - blur(in)), saturated.
        const double sigma =
            op.sharpen().sigma() == 0 ? kDefaultSharpenSigma : op.sharpen().sigma();
        const double amount = op.sharpen().amount();
        cv::Mat blurred;
        cv::GaussianBlur(image, blurred, cv::Size(), sigma);
        cv::addWeighted(image, 1.0 + amount, blurred, -amount, 0, image);
        break;
      }
      case FilterOp::kSepia:
        cv::transform(image, image, kSepiaBgr);
        break;
      case FilterOp::kBrightnessContrast: {
        const double contrast = op.brightness_contrast().contrast() == 0
                                    ? 1.0
                                    : op.brightness_contrast().contrast();
        image.convertTo(image, -1, contrast, op.brightness_contrast().brightness());
        break;
      }
      case FilterOp::kInvert:
        cv::bitwise_not(image, image);
        break;
      case FilterOp::kEdgeDetect: {
        const CannyThresholds canny = CannyThresholdsOf(op.edge_detect());
        cv::Mat gray;
        cv::Mat edges;
        cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
        cv::Canny(gray, edges, canny.low, canny.high);
        cv::cvtColor(edges, image, cv::COLOR_GRAY2BGR);
        break;
      }
      case FilterOp::OP_NOT_SET:
        return absl::InvalidArgumentError("empty filter operation");
    }
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("OpenCV failed: ", e.err));
  }
  return absl::OkStatus();
}

absl::Status Filterer::Filter(const v1::FilterRequest& request, v1::FilterResponse& response,
                              const std::function<bool()>& cancelled, FilterStats& stats,
                              absl::Time deadline) const {
  const v1::FilterSpec& spec = request.spec();
  // The whole spec is checked before the pixels are looked at.
  if (absl::Status s = CheckFilterSpec("spec", spec); !s.ok()) return s;
  const absl::string_view data = request.image().data();
  absl::StatusOr<ImageHeader> header = CheckDeclaredSize(data, options_.max_pixels);
  if (!header.ok()) return header.status();
  if (header->width > kMaxImageSide || header->height > kMaxImageSide) {
    return WithErrorReason(
        InvalidField("image.data", absl::StrCat("image is ", header->width, "x", header->height,
                                                "; want at most ", kMaxImageSide,
                                                " px per side")),
        kReasonImageTooLarge);
  }
  absl::StatusOr<Encoding> encoding = ResolveEncoding(spec.output(), header->kind, "spec.output");
  if (!encoding.ok()) return encoding.status();

  DecodeLimits limits;
  limits.max_pixels = options_.max_pixels;
  limits.max_side = kMaxImageSide;
  limits.max_scans = options_.max_scans;
  limits.cancelled = cancelled;
  limits.deadline = deadline;
  absl::StatusOr<cv::Mat> image = DecodeImage(data, *header, limits);
  if (!image.ok()) return image.status();
  stats.size = image->size();
  for (const FilterOp& op : spec.ops()) {
    if (cancelled()) return absl::CancelledError("cancelled between filter operations");
    if (absl::Status s = ApplyFilterOp(op, *image); !s.ok()) return s;
    ++stats.ops;
  }
  if (cancelled()) return absl::CancelledError("cancelled before encoding");
  return EncodeInto(*image, *encoding, *response.mutable_image());
}

}  // namespace conveyor::stages::filter
