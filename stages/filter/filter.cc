#include "stages/filter/filter.h"

#include <cmath>
#include <string>

#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "common/status_details.h"

namespace conveyor::stages::filter {
namespace {

using v1::FilterOp;

constexpr double kDefaultSharpenSigma = 1.0;
constexpr double kDefaultCannyLow = 100.0;
constexpr double kDefaultCannyHigh = 200.0;

// Written so that NaN fails every range check.
bool InOpenClosed(double v, double lo, double hi) { return v > lo && v <= hi; }
bool InClosed(double v, double lo, double hi) { return v >= lo && v <= hi; }

std::string OpField(int index, absl::string_view rest) {
  return absl::StrCat("spec.ops[", index, "]", rest.empty() ? "" : ".", rest);
}

absl::Status OutOfRange(int index, absl::string_view param, absl::string_view range,
                        double got) {
  return InvalidField(OpField(index, param), absl::StrCat("want ", range, ", got ", got));
}

// The thresholds Canny runs with, after the proto's defaults.
std::pair<double, double> CannyThresholds(const FilterOp::EdgeDetect& edge) {
  double high = edge.high_threshold() == 0 ? kDefaultCannyHigh : edge.high_threshold();
  double low = edge.low_threshold() == 0 && edge.high_threshold() == 0 ? kDefaultCannyLow
                                                                        : edge.low_threshold();
  return {low, high};
}

absl::Status ValidateOp(const FilterOp& op, int i) {
  switch (op.op_case()) {
    case FilterOp::kGrayscale:
    case FilterOp::kSepia:
    case FilterOp::kInvert:
      return absl::OkStatus();
    case FilterOp::kGaussianBlur:
      if (!InOpenClosed(op.gaussian_blur().sigma(), 0, 100)) {
        return OutOfRange(i, "gaussian_blur.sigma", "(0, 100]", op.gaussian_blur().sigma());
      }
      return absl::OkStatus();
    case FilterOp::kSharpen:
      if (!InOpenClosed(op.sharpen().amount(), 0, 10)) {
        return OutOfRange(i, "sharpen.amount", "(0, 10]", op.sharpen().amount());
      }
      if (!InClosed(op.sharpen().sigma(), 0, 20)) {
        return OutOfRange(i, "sharpen.sigma", "[0, 20] (0 = 1.0)", op.sharpen().sigma());
      }
      return absl::OkStatus();
    case FilterOp::kBrightnessContrast:
      if (!InClosed(op.brightness_contrast().brightness(), -255, 255)) {
        return OutOfRange(i, "brightness_contrast.brightness", "[-255, 255]",
                          op.brightness_contrast().brightness());
      }
      if (!InClosed(op.brightness_contrast().contrast(), 0, 10)) {
        return OutOfRange(i, "brightness_contrast.contrast", "[0, 10] (0 = 1.0)",
                          op.brightness_contrast().contrast());
      }
      return absl::OkStatus();
    case FilterOp::kEdgeDetect: {
      const FilterOp::EdgeDetect& edge = op.edge_detect();
      if (!InClosed(edge.low_threshold(), 0, 1000)) {
        return OutOfRange(i, "edge_detect.low_threshold", "[0, 1000]", edge.low_threshold());
      }
      if (!InClosed(edge.high_threshold(), 0, 1000)) {
        return OutOfRange(i, "edge_detect.high_threshold", "[low_threshold, 1000] (0 = 200)",
                          edge.high_threshold());
      }
      auto [low, high] = CannyThresholds(edge);
      if (high < low) {
        return InvalidField(OpField(i, "edge_detect.high_threshold"),
                            absl::StrCat("want [low_threshold, 1000] (0 = 200), got ", high,
                                         " below low_threshold ", low));
      }
      return absl::OkStatus();
    }
    case FilterOp::OP_NOT_SET:
      break;
  }
  return InvalidField(OpField(i, ""),
                      "want one operation (grayscale, gaussian_blur, sharpen, sepia, "
                      "brightness_contrast, invert or edge_detect), got none");
}

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

absl::Status ValidateFilterSpec(const v1::FilterSpec& spec) {
  if (spec.ops_size() < 1 || spec.ops_size() > kMaxOps) {
    return InvalidField("spec.ops",
                        absl::StrCat("want 1..", kMaxOps, " operations, got ", spec.ops_size()));
  }
  for (int i = 0; i < spec.ops_size(); ++i) {
    if (absl::Status s = ValidateOp(spec.ops(i), i); !s.ok()) return s;
  }
  return absl::OkStatus();
}

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
        auto [low, high] = CannyThresholds(op.edge_detect());
        cv::Mat gray;
        cv::Mat edges;
        cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
        cv::Canny(gray, edges, low, high);
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
  if (absl::Status s = ValidateFilterSpec(spec); !s.ok()) return s;
  const absl::string_view data = request.image().data();
  absl::StatusOr<ImageHeader> header = CheckDeclaredSize(data, options_.max_pixels);
  if (!header.ok()) return header.status();
  if (header->width > kMaxOutputSide || header->height > kMaxOutputSide) {
    return WithErrorReason(
        InvalidField("image.data", absl::StrCat("image is ", header->width, "x", header->height,
                                                "; want at most ", kMaxOutputSide,
                                                " px per side")),
        kReasonImageTooLarge);
  }
  absl::StatusOr<Encoding> encoding = ResolveEncoding(spec.output(), header->kind, "spec.output");
  if (!encoding.ok()) return encoding.status();

  DecodeLimits limits;
  limits.max_pixels = options_.max_pixels;
  limits.max_side = kMaxOutputSide;
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
