#include "client/chain_builder.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/flag_values.h"
#include "client/image_flags.h"
#include "common/proto_time.h"
#include "common/stage_registry.h"
#include "common/step_specs.h"
#include "google/protobuf/util/json_util.h"

namespace conveyor::client {
namespace {

using conveyor::v1::ResizeSpec;
using conveyor::v1::SubmitChainRequest;

// Which flag sets the step fields the shared spec checks name, most specific
// first; `typed` is the flag's value as given, or nullptr.
struct FieldFlag {
  absl::string_view field;  // under the step: ".upload.key_template"
  absl::string_view flag;
  std::string StepFlags::*typed;
};
constexpr FieldFlag kFieldFlags[] = {
    {".download.url", "--url", &StepFlags::url},
    {".resize.fit", "--fit", &StepFlags::fit},
    {".resize.output", "--format", &StepFlags::format},
    {".resize", "--resize", &StepFlags::resize},
    {".filter.output", "--format", &StepFlags::format},
    {".filter", "--filter", nullptr},
    {".upload.key_template", "--key", &StepFlags::key_template},
    {".upload", "--upload", &StepFlags::upload},
    {".webhook.url", "--webhook", &StepFlags::webhook},
};

// Runs the stage's own spec check (common/step_specs.h, through the stage
// registry) on a step built from flags: the CLI refuses what the
// orchestrator would, by the same rule, before any RPC. The refusal is
// reworded to name the flag, and quotes the value typed (cut short) when the
// shared message does not: that one never echoes a URL, which may carry
// credentials into server logs, but the user's own terminal may show it.
absl::Status CheckStepFlags(const v1::Step& step, const StepFlags& flags) {
  const StageInfo* stage = StageOfStep(step);
  if (stage == nullptr) return absl::OkStatus();
  const absl::Status status = stage->check_spec("", step);
  if (status.ok()) return status;
  const absl::string_view message = status.message();
  const size_t colon = message.find(": ");
  if (colon == absl::string_view::npos) return status;
  const absl::string_view field = message.substr(0, colon);
  for (const FieldFlag& f : kFieldFlags) {
    if (!absl::StartsWith(field, f.field)) continue;
    std::string description(message.substr(colon + 2));
    if (f.typed != nullptr) {
      const std::string quoted = Quote(Preview(flags.*f.typed));
      if (!absl::StrContains(description, quoted)) absl::StrAppend(&description, " (", quoted, ")");
    }
    return FlagError(f.flag, description);
  }
  return status;
}

// Applies --timeout-per-step / --max-attempts to every step lacking its own.
absl::Status ApplyStepDefaults(const StepFlags& flags, v1::ChainSpec& spec) {
  if (!flags.timeout_per_step.empty()) {
    absl::StatusOr<absl::Duration> timeout =
        ParseDurationFlag("--timeout-per-step", flags.timeout_per_step);
    if (!timeout.ok()) return timeout.status();
    for (v1::Step& step : *spec.mutable_steps()) {
      if (!step.has_timeout()) *step.mutable_timeout() = ToProtoDuration(*timeout);
    }
  }
  if (flags.max_attempts != 0) {
    if (flags.max_attempts < 1 || flags.max_attempts > 20) {
      return FlagError("--max-attempts", absl::StrCat("want 1..20, got ", flags.max_attempts));
    }
    for (v1::Step& step : *spec.mutable_steps()) {
      if (step.retry().max_attempts() == 0) {
        step.mutable_retry()->set_max_attempts(flags.max_attempts);
      }
    }
  }
  return absl::OkStatus();
}

// Labels, priority, timeout and idempotency key on top of `request`.
absl::Status ApplyChainFlags(const ChainFlags& flags, SubmitChainRequest& request) {
  v1::ChainSpec& spec = *request.mutable_spec();
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
    absl::StatusOr<v1::Priority> priority = ParsePriority(flags.priority);
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

absl::StatusOr<SubmitChainRequest> BuildSubmitRequest(const ChainFlags& flags) {
  const StepFlags& f = flags.steps;
  if (!f.url.empty() && f.inline_source) {
    return FlagError("--url", "cannot be combined with --file: a chain has one source");
  }
  if (f.url.empty() && !f.inline_source) {
    return FlagError("--url", "a chain needs a source: --url URL, --file PATH or --spec FILE");
  }
  SubmitChainRequest request;
  v1::ChainSpec& spec = *request.mutable_spec();

  if (!f.url.empty()) {
    v1::Step& download = *spec.add_steps();
    download.mutable_download()->set_url(f.url);
    // The source first: a bad --url is the error, whatever else is wrong.
    if (absl::Status s = CheckStepFlags(download, f); !s.ok()) return s;
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
      absl::StatusOr<v1::FilterOp> op = ParseFilterOp(text);
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
      absl::StatusOr<v1::ImageFormat> format = ParseFormat(f.format);
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
    conveyor::v1::UploadSpec* upload = spec.add_steps()->mutable_upload();
    upload->set_destination(f.upload);
    upload->set_key_template(f.key_template);
  } else if (!f.key_template.empty()) {
    return FlagError("--key", "needs --upload");
  }

  if (!f.webhook.empty()) {
    spec.add_steps()->mutable_webhook()->set_url(f.webhook);
  }

  if (spec.steps_size() == 0) {
    return FlagError("--file",
                     "nothing to do: give at least one of --resize, --filter, --upload, "
                     "--webhook");
  }
  for (const v1::Step& step : spec.steps()) {
    if (absl::Status s = CheckStepFlags(step, f); !s.ok()) return s;
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
    v1::ChainSpec spec;
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

}  // namespace conveyor::client
