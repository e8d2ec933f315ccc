#include "common/step_specs.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_details.h"

namespace conveyor {
namespace {

// The scheme of `url` for messages ("" if there is none): never the rest,
// which may hold credentials.
std::string SchemeOf(absl::string_view url) {
  size_t colon = url.find(':');
  if (colon == absl::string_view::npos || colon == 0 || colon > 16) return "";
  for (char c : url.substr(0, colon)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return "";
    }
  }
  return std::string(url.substr(0, colon));
}

// Written so that NaN fails every range check.
bool InOpenClosed(double v, double lo, double hi) { return v > lo && v <= hi; }
bool InClosed(double v, double lo, double hi) { return v >= lo && v <= hi; }

absl::Status OutOfRange(absl::string_view op_field, absl::string_view param,
                        absl::string_view range, double got) {
  return InvalidField(absl::StrCat(op_field, ".", param),
                      absl::StrCat("want ", range, ", got ", got));
}

// One op's parameters against the ranges in stages.proto; `field` names the
// op ("spec.ops[2]").
absl::Status CheckFilterOp(absl::string_view field, const v1::FilterOp& op) {
  using v1::FilterOp;
  switch (op.op_case()) {
    case FilterOp::kGrayscale:
    case FilterOp::kSepia:
    case FilterOp::kInvert:
      return absl::OkStatus();
    case FilterOp::kGaussianBlur:
      if (!InOpenClosed(op.gaussian_blur().sigma(), 0, 100)) {
        return OutOfRange(field, "gaussian_blur.sigma", "(0, 100]", op.gaussian_blur().sigma());
      }
      return absl::OkStatus();
    case FilterOp::kSharpen:
      if (!InOpenClosed(op.sharpen().amount(), 0, 10)) {
        return OutOfRange(field, "sharpen.amount", "(0, 10]", op.sharpen().amount());
      }
      if (!InClosed(op.sharpen().sigma(), 0, 20)) {
        return OutOfRange(field, "sharpen.sigma", "[0, 20] (0 = 1.0)", op.sharpen().sigma());
      }
      return absl::OkStatus();
    case FilterOp::kBrightnessContrast:
      if (!InClosed(op.brightness_contrast().brightness(), -255, 255)) {
        return OutOfRange(field, "brightness_contrast.brightness", "[-255, 255]",
                          op.brightness_contrast().brightness());
      }
      if (!InClosed(op.brightness_contrast().contrast(), 0, 10)) {
        return OutOfRange(field, "brightness_contrast.contrast", "[0, 10] (0 = 1.0)",
                          op.brightness_contrast().contrast());
      }
      return absl::OkStatus();
    case FilterOp::kEdgeDetect: {
      const FilterOp::EdgeDetect& edge = op.edge_detect();
      if (!InClosed(edge.low_threshold(), 0, 1000)) {
        return OutOfRange(field, "edge_detect.low_threshold", "[0, 1000]", edge.low_threshold());
      }
      if (!InClosed(edge.high_threshold(), 0, 1000)) {
        return OutOfRange(field, "edge_detect.high_threshold", "[low_threshold, 1000] (0 = 200)",
                          edge.high_threshold());
      }
      const CannyThresholds canny = CannyThresholdsOf(edge);
      if (canny.high < canny.low) {
        return InvalidField(absl::StrCat(field, ".edge_detect.high_threshold"),
                            absl::StrCat("want [low_threshold, 1000] (0 = 200), got ", canny.high,
                                         " below low_threshold ", canny.low));
      }
      return absl::OkStatus();
    }
    case FilterOp::OP_NOT_SET:
      break;
  }
  return InvalidField(field,
                      "want one operation (grayscale, gaussian_blur, sharpen, sepia, "
                      "brightness_contrast, invert or edge_detect), got none");
}

}  // namespace

CannyThresholds CannyThresholdsOf(const v1::FilterOp::EdgeDetect& edge) {
  constexpr double kDefaultLow = 100.0;
  constexpr double kDefaultHigh = 200.0;
  const double high = edge.high_threshold() == 0 ? kDefaultHigh : edge.high_threshold();
  const double low =
      edge.low_threshold() == 0 && edge.high_threshold() == 0 ? kDefaultLow : edge.low_threshold();
  return {low, high};
}

std::string Preview(absl::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) return absl::CHexEscape(value);
  return absl::StrCat(absl::CHexEscape(value.substr(0, max_bytes)), "... (", value.size(),
                      " bytes)");
}

// C0 controls, space and DEL have no place in a URL, destination or key
// template (they must be percent-encoded); refusing them here keeps them out
// of request lines, headers and object keys downstream.
absl::Status CheckNoControl(absl::string_view field, absl::string_view value, bool allow_space) {
  for (size_t i = 0; i < value.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c == 0x7f || (c == ' ' && !allow_space)) {
      return InvalidField(field, absl::StrCat("byte ", i, " is a control character or space (0x",
                                              absl::Hex(c, absl::kZeroPad2), ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckHttpUrl(absl::string_view field, absl::string_view url) {
  if (absl::Status s = CheckFieldLength(field, url, kMaxUrlBytes); !s.ok()) return s;
  if (absl::Status s = CheckNoControl(field, url, /*allow_space=*/false); !s.ok()) return s;
  const bool ok = (absl::StartsWithIgnoreCase(url, "http://") && url.size() > 7) ||
                  (absl::StartsWithIgnoreCase(url, "https://") && url.size() > 8);
  if (ok) return absl::OkStatus();
  const std::string scheme = SchemeOf(url);
  if (url.empty()) return InvalidField(field, "want an http:// or https:// URL, got nothing");
  if (scheme.empty()) {
    return InvalidField(field, "want an http:// or https:// URL, got one without a scheme");
  }
  return InvalidField(field, absl::StrCat("want an http:// or https:// URL, got scheme \"",
                                          Preview(scheme, 16), "\""));
}

absl::Status CheckEncodeOptions(absl::string_view field, const v1::EncodeOptions& out) {
  if (!v1::ImageFormat_IsValid(out.format())) {
    return InvalidField(absl::StrCat(field, ".format"),
                        absl::StrCat("want JPEG, PNG or WebP, got ", out.format()));
  }
  if (out.quality() < 0 || out.quality() > 100) {
    return InvalidField(
        absl::StrCat(field, ".quality"),
        absl::StrCat("want 1..100 (0 = default ", kDefaultQuality, "), got ", out.quality()));
  }
  return absl::OkStatus();
}

absl::Status CheckDownloadSpec(absl::string_view field, const v1::DownloadSpec& spec) {
  if (absl::Status s = CheckHttpUrl(absl::StrCat(field, ".url"), spec.url()); !s.ok()) return s;
  if (spec.max_bytes() < 0) {
    return InvalidField(
        absl::StrCat(field, ".max_bytes"),
        absl::StrCat("want 0 (the worker's limit) or more, got ", spec.max_bytes()));
  }
  return absl::OkStatus();
}

absl::Status CheckResizeSpec(absl::string_view field, const v1::ResizeSpec& spec) {
  using v1::ResizeSpec;
  const std::string width = absl::StrCat(field, ".width");
  const std::string height = absl::StrCat(field, ".height");
  if (spec.width() < 0 || spec.width() > kMaxImageSide) {
    return InvalidField(width, absl::StrCat("want 0..", kMaxImageSide, ", got ", spec.width()));
  }
  if (spec.height() < 0 || spec.height() > kMaxImageSide) {
    return InvalidField(height, absl::StrCat("want 0..", kMaxImageSide, ", got ", spec.height()));
  }
  if (!ResizeSpec::Fit_IsValid(spec.fit())) {
    return InvalidField(absl::StrCat(field, ".fit"),
                        absl::StrCat("want CONTAIN, COVER, FILL or INSIDE, got ", spec.fit()));
  }
  if (!ResizeSpec::ShrinkOnLoad_IsValid(spec.shrink_on_load())) {
    return InvalidField(absl::StrCat(field, ".shrink_on_load"),
                        absl::StrCat("want QUALITY, FAST or OFF, got ", spec.shrink_on_load()));
  }
  if (spec.width() == 0 && spec.height() == 0) {
    return InvalidField(width, "want width and/or height above 0, got both 0");
  }
  const bool needs_both = spec.fit() == ResizeSpec::COVER || spec.fit() == ResizeSpec::FILL;
  if (needs_both && (spec.width() == 0 || spec.height() == 0)) {
    return InvalidField(spec.width() == 0 ? width : height,
                        absl::StrCat("want 1..", kMaxImageSide, " with fit ",
                                     ResizeSpec::Fit_Name(spec.fit()), ", got 0"));
  }
  return CheckEncodeOptions(absl::StrCat(field, ".output"), spec.output());
}

absl::Status CheckFilterSpec(absl::string_view field, const v1::FilterSpec& spec) {
  if (spec.ops_size() < 1 || spec.ops_size() > kMaxFilterOps) {
    return InvalidField(absl::StrCat(field, ".ops"),
                        absl::StrCat("want 1..", kMaxFilterOps, " ops, got ", spec.ops_size()));
  }
  for (int i = 0; i < spec.ops_size(); ++i) {
    if (absl::Status s = CheckFilterOp(absl::StrCat(field, ".ops[", i, "]"), spec.ops(i));
        !s.ok()) {
      return s;
    }
  }
  return CheckEncodeOptions(absl::StrCat(field, ".output"), spec.output());
}

absl::Status CheckUploadSpec(absl::string_view field, const v1::UploadSpec& spec) {
  const std::string dest = absl::StrCat(field, ".destination");
  if (absl::Status s = CheckFieldLength(dest, spec.destination(), kMaxDestinationBytes); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckNoControl(dest, spec.destination(), true); !s.ok()) return s;
  if (!absl::StartsWith(spec.destination(), "file:///") &&
      !(absl::StartsWith(spec.destination(), "s3://") && spec.destination().size() > 5)) {
    return InvalidField(dest, absl::StrCat("want file:///dir or s3://bucket[/prefix], got \"",
                                           Preview(spec.destination()), "\""));
  }
  const std::string key = absl::StrCat(field, ".key_template");
  if (absl::Status s = CheckFieldLength(key, spec.key_template(), kMaxKeyTemplateBytes); !s.ok()) {
    return s;
  }
  return CheckNoControl(key, spec.key_template(), /*allow_space=*/false);
}

absl::Status CheckWebhookSpec(absl::string_view field, const v1::WebhookSpec& spec) {
  return CheckHttpUrl(absl::StrCat(field, ".url"), spec.url());
}

}  // namespace conveyor
