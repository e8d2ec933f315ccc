#include "client/image_flags.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/flag_values.h"
#include "common/step_specs.h"

namespace conveyor::client {
namespace {

using conveyor::v1::FilterOp;
using conveyor::v1::ImageFormat;
using conveyor::v1::ResizeSpec;

// The named parameters of one filter op, "k=v,k=v" after the colon.
struct FilterParams {
  std::vector<std::pair<std::string, double>> values;
};

absl::StatusOr<FilterParams> ParseFilterParams(absl::string_view op_name, absl::string_view text,
                                               const std::vector<std::string>& allowed) {
  FilterParams params;
  if (text.empty()) return params;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    const std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(kv.first));
    const absl::string_view value = absl::StripAsciiWhitespace(kv.second);
    if (allowed.empty()) {
      return FlagError("--filter",
                       absl::StrCat(op_name, " takes no parameters, got ", Quote(part)));
    }
    bool known = false;
    for (const std::string& name : allowed) known = known || name == key;
    if (!known) {
      return FlagError("--filter", absl::StrCat(op_name, " has no parameter ", Quote(key),
                                                " (want ", absl::StrJoin(allowed, ", "), ")"));
    }
    double number = 0;
    if (value.empty() || !absl::SimpleAtod(value, &number) || !std::isfinite(number)) {
      return FlagError("--filter",
                       absl::StrCat(op_name, ": ", key, " wants a number, got ", Quote(value)));
    }
    for (const auto& [seen, unused] : params.values) {
      if (seen == key) {
        return FlagError("--filter",
                         absl::StrCat(op_name, ": ", key, " given twice in ", Quote(text)));
      }
    }
    params.values.emplace_back(key, number);
  }
  return params;
}

double ParamOr(const FilterParams& params, absl::string_view key, double fallback) {
  for (const auto& [name, value] : params.values) {
    if (name == key) return value;
  }
  return fallback;
}

}  // namespace

absl::StatusOr<ResizeSpec::Fit> ParseFit(absl::string_view text) {
  const std::string fit = absl::AsciiStrToLower(text);
  if (fit == "contain") return ResizeSpec::CONTAIN;
  if (fit == "cover") return ResizeSpec::COVER;
  if (fit == "fill") return ResizeSpec::FILL;
  if (fit == "inside") return ResizeSpec::INSIDE;
  return FlagError("--fit", absl::StrCat("want contain, cover, fill or inside, got ", Quote(text)));
}

absl::StatusOr<ImageFormat> ParseFormat(absl::string_view text) {
  const std::string format = absl::AsciiStrToLower(text);
  if (format == "jpeg" || format == "jpg") return conveyor::v1::IMAGE_FORMAT_JPEG;
  if (format == "png") return conveyor::v1::IMAGE_FORMAT_PNG;
  if (format == "webp") return conveyor::v1::IMAGE_FORMAT_WEBP;
  return FlagError("--format", absl::StrCat("want jpeg, png or webp, got ", Quote(text)));
}

absl::StatusOr<ResizeSpec> ParseResizeGeometry(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  const std::vector<absl::string_view> parts = absl::StrSplit(lower, 'x');
  const auto bad = [&] {
    return FlagError("--resize", absl::StrCat("want WxH, Wx or xH (e.g. 800x600, 800x, x600), got ",
                                              Quote(text)));
  };
  if (parts.size() != 2 || (parts[0].empty() && parts[1].empty())) return bad();
  ResizeSpec spec;
  int sides[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    if (parts[i].empty()) continue;
    for (char c : parts[i]) {
      if (c < '0' || c > '9') return bad();
    }
    if (!absl::SimpleAtoi(parts[i], &sides[i]) || sides[i] < 1 || sides[i] > kMaxImageSide) {
      return FlagError("--resize", absl::StrCat(i == 0 ? "width" : "height", " wants 1..",
                                                kMaxImageSide, ", got ", Quote(text)));
    }
  }
  spec.set_width(sides[0]);
  spec.set_height(sides[1]);
  return spec;
}

absl::StatusOr<FilterOp> ParseFilterOp(absl::string_view text) {
  std::pair<absl::string_view, absl::string_view> name_params =
      absl::StrSplit(text, absl::MaxSplits(':', 1));
  const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name_params.first));
  const absl::string_view params_text = name_params.second;
  FilterOp op;
  if (name == "grayscale" || name == "greyscale" || name == "gray") {
    absl::StatusOr<FilterParams> params = ParseFilterParams(name, params_text, {});
    if (!params.ok()) return params.status();
    op.mutable_grayscale();
  } else if (name == "blur" || name == "gaussian_blur") {
    absl::StatusOr<FilterParams> params = ParseFilterParams(name, params_text, {"sigma"});
    if (!params.ok()) return params.status();
    op.mutable_gaussian_blur()->set_sigma(ParamOr(*params, "sigma", 2.0));
  } else if (name == "sharpen") {
    absl::StatusOr<FilterParams> params = ParseFilterParams(name, params_text, {"amount", "sigma"});
    if (!params.ok()) return params.status();
    op.mutable_sharpen()->set_amount(ParamOr(*params, "amount", 1.0));
    op.mutable_sharpen()->set_sigma(ParamOr(*params, "sigma", 0.0));
  } else if (name == "sepia") {
    absl::StatusOr<FilterParams> params = ParseFilterParams(name, params_text, {});
    if (!params.ok()) return params.status();
    op.mutable_sepia();
  } else if (name == "brightness" || name == "contrast" || name == "brightness_contrast") {
    absl::StatusOr<FilterParams> params =
        ParseFilterParams(name, params_text, {"brightness", "contrast"});
    if (!params.ok()) return params.status();
    if (params->values.empty()) {
      return FlagError("--filter", absl::StrCat(name,
                                                " needs brightness and/or contrast, e.g. "
                                                "brightness:brightness=10,contrast=1.2"));
    }
    op.mutable_brightness_contrast()->set_brightness(ParamOr(*params, "brightness", 0.0));
    op.mutable_brightness_contrast()->set_contrast(ParamOr(*params, "contrast", 0.0));
  } else if (name == "invert" || name == "negate") {
    absl::StatusOr<FilterParams> params = ParseFilterParams(name, params_text, {});
    if (!params.ok()) return params.status();
    op.mutable_invert();
  } else if (name == "edges" || name == "edge_detect" || name == "canny") {
    absl::StatusOr<FilterParams> params = ParseFilterParams(name, params_text, {"low", "high"});
    if (!params.ok()) return params.status();
    op.mutable_edge_detect()->set_low_threshold(ParamOr(*params, "low", 0.0));
    op.mutable_edge_detect()->set_high_threshold(ParamOr(*params, "high", 0.0));
  } else {
    return FlagError("--filter", absl::StrCat("unknown filter ", Quote(name),
                                              " (want grayscale, blur, sharpen, sepia, brightness, "
                                              "invert or edges)"));
  }
  return op;
}

}  // namespace conveyor::client
