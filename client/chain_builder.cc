#include "client/chain_builder.h"

#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"

namespace conveyor::client {
namespace {

using conveyor::v1::ChainSpec;
using conveyor::v1::FilterOp;
using conveyor::v1::ImageFormat;
using conveyor::v1::Priority;
using conveyor::v1::ResizeSpec;
using conveyor::v1::State;
using conveyor::v1::Step;
using conveyor::v1::SubmitChainRequest;

// Mirrors ResizeSpec's documented limit, so a typo fails before any RPC.
constexpr int kMaxSide = 16384;

absl::Status FlagError(absl::string_view flag, absl::string_view description) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", description));
}

std::string Quote(absl::string_view text) { return absl::StrCat("\"", text, "\""); }

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

absl::Status CheckUrl(absl::string_view flag, absl::string_view url) {
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
    return FlagError(flag, absl::StrCat("want an http:// or https:// URL, got ", Quote(url)));
  }
  return absl::OkStatus();
}

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

// Applies --timeout-per-step / --max-attempts to every step lacking its own.
absl::Status ApplyStepDefaults(const StepFlags& flags, ChainSpec& spec) {
  if (!flags.timeout_per_step.empty()) {
    absl::StatusOr<absl::Duration> timeout =
        ParseDurationFlag("--timeout-per-step", flags.timeout_per_step);
    if (!timeout.ok()) return timeout.status();
    for (Step& step : *spec.mutable_steps()) {
      if (!step.has_timeout()) *step.mutable_timeout() = ToProtoDuration(*timeout);
    }
  }
  if (flags.max_attempts != 0) {
    if (flags.max_attempts < 1 || flags.max_attempts > 20) {
      return FlagError("--max-attempts", absl::StrCat("want 1..20, got ", flags.max_attempts));
    }
    for (Step& step : *spec.mutable_steps()) {
      if (step.retry().max_attempts() == 0) {
        step.mutable_retry()->set_max_attempts(flags.max_attempts);
      }
    }
  }
  return absl::OkStatus();
}

// Labels, priority, timeout and idempotency key on top of `request`.
absl::Status ApplyChainFlags(const ChainFlags& flags, SubmitChainRequest& request) {
  ChainSpec& spec = *request.mutable_spec();
  std::vector<std::string> seen;
  for (const std::string& text : flags.labels) {
    absl::StatusOr<std::pair<std::string, std::string>> label = ParseLabel(text);
    if (!label.ok()) return label.status();
    for (const std::string& key : seen) {
      if (key == label->first) {
        return FlagError("--label", absl::StrCat("key ", Quote(key), " given twice"));
      }
    }
    seen.push_back(label->first);
    (*spec.mutable_labels())[label->first] = label->second;
  }
  if (!flags.priority.empty()) {
    absl::StatusOr<Priority> priority = ParsePriority(flags.priority);
    if (!priority.ok()) return priority.status();
    spec.set_priority(*priority);
  }
  if (!flags.chain_timeout.empty()) {
    absl::StatusOr<absl::Duration> timeout =
        ParseDurationFlag("--chain-timeout", flags.chain_timeout);
    if (!timeout.ok()) return timeout.status();
    *spec.mutable_timeout() = ToProtoDuration(*timeout);
  }
  if (!flags.idempotency_key.empty()) {
    if (flags.idempotency_key.size() > 128) {
      return FlagError("--idempotency-key", absl::StrCat("want at most 128 characters, got ",
                                                         flags.idempotency_key.size()));
    }
    request.set_idempotency_key(flags.idempotency_key);
  }
  return ApplyStepDefaults(flags.steps, spec);
}

// The first step flag that is set, for "cannot combine with --spec".
std::string FirstStepFlag(const StepFlags& flags) {
  if (!flags.url.empty()) return "--url";
  if (!flags.resize.empty()) return "--resize";
  if (!flags.fit.empty()) return "--fit";
  if (flags.fast) return "--fast";
  if (!flags.format.empty()) return "--format";
  if (flags.quality != 0) return "--quality";
  if (!flags.filters.empty()) return "--filter";
  if (!flags.upload.empty()) return "--upload";
  if (!flags.key_template.empty()) return "--key";
  if (!flags.webhook.empty()) return "--webhook";
  return "";
}

}  // namespace

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
    if (!absl::SimpleAtoi(parts[i], &sides[i]) || sides[i] < 1 || sides[i] > kMaxSide) {
      return FlagError("--resize", absl::StrCat(i == 0 ? "width" : "height", " wants 1..", kMaxSide,
                                                ", got ", Quote(text)));
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

absl::StatusOr<Priority> ParsePriority(absl::string_view text) {
  const std::string priority = absl::AsciiStrToLower(text);
  if (priority == "low") return conveyor::v1::PRIORITY_LOW;
  if (priority == "normal") return conveyor::v1::PRIORITY_NORMAL;
  if (priority == "high") return conveyor::v1::PRIORITY_HIGH;
  return FlagError("--priority", absl::StrCat("want low, normal or high, got ", Quote(text)));
}

absl::StatusOr<std::pair<std::string, std::string>> ParseLabel(absl::string_view text) {
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return FlagError("--label", absl::StrCat("want key=value, got ", Quote(text)));
  }
  return std::make_pair(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
}

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag, absl::string_view text) {
  const auto bad = [&] {
    return FlagError(flag, absl::StrCat("want a duration such as 500ms, 30s, 5m, 1h30m or 2d, "
                                        "got ",
                                        Quote(text)));
  };
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  absl::Duration total = absl::ZeroDuration();
  // absl::ParseDuration stops at hours; days are handy for --older-than.
  const size_t d = rest.find('d');
  if (d != absl::string_view::npos) {
    double days = 0;
    if (d == 0 || !absl::SimpleAtod(rest.substr(0, d), &days) || !std::isfinite(days)) {
      return bad();
    }
    total += absl::Hours(24) * days;
    rest = rest.substr(d + 1);
  }
  if (!rest.empty()) {
    absl::Duration part;
    if (rest == "0" || !absl::ParseDuration(rest, &part) || part == absl::InfiniteDuration()) {
      return bad();
    }
    total += part;
  }
  if (total <= absl::ZeroDuration()) {
    return FlagError(flag, absl::StrCat("want a positive duration, got ", Quote(text)));
  }
  return total;
}

absl::StatusOr<absl::Time> ParseTimeFlag(absl::string_view flag, absl::string_view text,
                                         absl::Time now) {
  absl::Time t;
  std::string ignored;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &ignored)) return t;
  absl::StatusOr<absl::Duration> ago = ParseDurationFlag(flag, text);
  if (!ago.ok()) {
    return FlagError(flag,
                     absl::StrCat("want an RFC 3339 time (2026-11-26T10:00:00Z) or a duration "
                                  "ago (30m, 2h, 1d), got ",
                                  Quote(text)));
  }
  return now - *ago;
}

absl::StatusOr<State> ParseStateFlag(absl::string_view flag, absl::string_view text,
                                     const std::vector<State>& allowed) {
  const std::string upper = absl::AsciiStrToUpper(text);
  State state = conveyor::v1::STATE_UNSPECIFIED;
  const bool parsed =
      conveyor::v1::State_Parse(upper, &state) && state != conveyor::v1::STATE_UNSPECIFIED;
  bool ok = parsed;
  if (parsed && !allowed.empty()) {
    ok = false;
    for (State s : allowed) ok = ok || s == state;
  }
  if (!ok) {
    std::vector<std::string> names;
    if (allowed.empty()) {
      for (int i = conveyor::v1::PENDING; i <= conveyor::v1::CANCELLED; ++i) {
        names.push_back(absl::AsciiStrToLower(conveyor::v1::State_Name(static_cast<State>(i))));
      }
    } else {
      for (State s : allowed) names.push_back(absl::AsciiStrToLower(conveyor::v1::State_Name(s)));
    }
    return FlagError(
        flag, absl::StrCat("want one of ", absl::StrJoin(names, ", "), ", got ", Quote(text)));
  }
  return state;
}

absl::StatusOr<SubmitChainRequest> BuildSubmitRequest(const ChainFlags& flags) {
  const StepFlags& f = flags.steps;
  if (!f.url.empty() && f.inline_source) {
    return FlagError("--url", "cannot be combined with --file: a chain has one source");
  }
  if (f.url.empty() && !f.inline_source) {
    return FlagError("--url", "a chain needs a source: --url URL, --file PATH or --spec FILE");
  }
  SubmitChainRequest request;
  ChainSpec& spec = *request.mutable_spec();

  if (!f.url.empty()) {
    if (absl::Status s = CheckUrl("--url", f.url); !s.ok()) return s;
    spec.add_steps()->mutable_download()->set_url(f.url);
  }

  ResizeSpec* resize = nullptr;
  if (!f.resize.empty()) {
    absl::StatusOr<ResizeSpec> geometry = ParseResizeGeometry(f.resize);
    if (!geometry.ok()) return geometry.status();
    resize = spec.add_steps()->mutable_resize();
    *resize = *geometry;
    if (!f.fit.empty()) {
      absl::StatusOr<ResizeSpec::Fit> fit = ParseFit(f.fit);
      if (!fit.ok()) return fit.status();
      if ((*fit == ResizeSpec::COVER || *fit == ResizeSpec::FILL) &&
          (resize->width() == 0 || resize->height() == 0)) {
        return FlagError("--fit", absl::StrCat(absl::AsciiStrToLower(f.fit),
                                               " needs both width and height, e.g. "
                                               "--resize 800x600, got --resize ",
                                               Quote(f.resize)));
      }
      resize->set_fit(*fit);
    }
    if (f.fast) resize->set_shrink_on_load(ResizeSpec::FAST);
  } else if (!f.fit.empty()) {
    return FlagError("--fit", "needs --resize");
  } else if (f.fast) {
    return FlagError("--fast", "needs --resize");
  }

  conveyor::v1::FilterSpec* filter = nullptr;
  if (!f.filters.empty()) {
    filter = spec.add_steps()->mutable_filter();
    for (const std::string& text : f.filters) {
      absl::StatusOr<FilterOp> op = ParseFilterOp(text);
      if (!op.ok()) return op.status();
      *filter->add_ops() = *op;
    }
  }

  if (!f.format.empty() || f.quality != 0) {
    conveyor::v1::EncodeOptions* output = filter != nullptr   ? filter->mutable_output()
                                          : resize != nullptr ? resize->mutable_output()
                                                              : nullptr;
    if (output == nullptr) {
      return FlagError(f.format.empty() ? "--quality" : "--format",
                       "sets the output encoding of --resize or --filter; give one of them");
    }
    if (!f.format.empty()) {
      absl::StatusOr<ImageFormat> format = ParseFormat(f.format);
      if (!format.ok()) return format.status();
      output->set_format(*format);
    }
    if (f.quality != 0) {
      if (f.quality < 1 || f.quality > 100) {
        return FlagError("--quality", absl::StrCat("want 1..100, got ", f.quality));
      }
      output->set_quality(f.quality);
    }
  }

  if (!f.upload.empty()) {
    if (!absl::StartsWith(f.upload, "file://") && !absl::StartsWith(f.upload, "s3://")) {
      return FlagError("--upload", absl::StrCat("want file:///dir or s3://bucket[/prefix], got ",
                                                Quote(f.upload)));
    }
    conveyor::v1::UploadSpec* upload = spec.add_steps()->mutable_upload();
    upload->set_destination(f.upload);
    upload->set_key_template(f.key_template);
  } else if (!f.key_template.empty()) {
    return FlagError("--key", "needs --upload");
  }

  if (!f.webhook.empty()) {
    if (absl::Status s = CheckUrl("--webhook", f.webhook); !s.ok()) return s;
    spec.add_steps()->mutable_webhook()->set_url(f.webhook);
  }

  if (spec.steps_size() == 0) {
    return FlagError("--file",
                     "nothing to do: give at least one of --resize, --filter, --upload, "
                     "--webhook");
  }
  if (absl::Status s = ApplyChainFlags(flags, request); !s.ok()) return s;
  return request;
}

absl::StatusOr<SubmitChainRequest> BuildSubmitRequestFromSpec(absl::string_view json,
                                                              const ChainFlags& flags) {
  if (const std::string step_flag = FirstStepFlag(flags.steps); !step_flag.empty()) {
    return FlagError(step_flag, "cannot be combined with --spec: the spec file lists the steps");
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  SubmitChainRequest request;
  const auto as_request = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &request, options);
  if (!as_request.ok() || !request.has_spec()) {
    request.Clear();
    ChainSpec spec;
    const auto as_spec = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(json.data(), json.size()), &spec, options);
    if (!as_spec.ok()) {
      // Report the error of the form the file looks like.
      const bool looks_like_request = absl::StrContains(json, "\"spec\"");
      const std::string why =
          looks_like_request ? as_request.message().ToString() : as_spec.message().ToString();
      return FlagError(
          "--spec", absl::StrCat("not the JSON form of a SubmitChainRequest or ChainSpec: ", why));
    }
    *request.mutable_spec() = std::move(spec);
  }
  if (request.spec().steps_size() == 0) {
    return FlagError("--spec", "the chain has no steps");
  }
  if (flags.steps.inline_source && !request.source().data().empty()) {
    return FlagError("--file", "cannot be combined with a spec that carries source.data");
  }
  if (absl::Status s = ApplyChainFlags(flags, request); !s.ok()) return s;
  return request;
}

std::vector<std::string> ParseBatchLines(absl::string_view text) {
  std::vector<std::string> items;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    items.emplace_back(line);
  }
  return items;
}

bool IsHttpUrl(absl::string_view text) {
  return absl::StartsWith(text, "http://") || absl::StartsWith(text, "https://");
}

google::protobuf::Timestamp ToProtoTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t seconds = absl::ToUnixSeconds(t);
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
  return ts;
}

absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  google::protobuf::Duration out;
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
  return out;
}

absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace conveyor::client
