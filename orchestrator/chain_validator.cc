#include "orchestrator/chain_validator.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/duration.pb.h"
#include "common/status_details.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::ChainSpec;
using conveyor::v1::StageKind;
using conveyor::v1::Step;

enum class DataKind { kNone, kImage, kStoredObject };

absl::string_view KindName(DataKind kind) {
  switch (kind) {
    case DataKind::kNone:
      return "nothing";
    case DataKind::kImage:
      return "an image";
    case DataKind::kStoredObject:
      return "a stored object";
  }
  return "?";
}

constexpr int64_t kOneHourSeconds = 3600;
constexpr int64_t kMaxChainTimeoutSeconds = 30LL * 24 * 3600;

std::string Describe(const google::protobuf::Duration& d) {
  return absl::StrCat(d.seconds(), "s+", d.nanos(), "ns");
}

// 0 <= d <= max_seconds, with well-formed nanos.
absl::Status CheckDuration(absl::string_view field, const google::protobuf::Duration& d,
                           int64_t max_seconds, absl::string_view limit_text) {
  bool malformed = d.nanos() < 0 || d.nanos() > 999999999 || d.seconds() < 0;
  bool too_long = d.seconds() > max_seconds || (d.seconds() == max_seconds && d.nanos() > 0);
  if (malformed || too_long) {
    return InvalidField(field, absl::StrCat("want 0..", limit_text, ", got ", Describe(d)));
  }
  return absl::OkStatus();
}

// Longer than `max_bytes`: names the size and the limit, never the value.
absl::Status CheckSize(absl::string_view field, absl::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) return absl::OkStatus();
  return InvalidField(
      field, absl::StrCat(value.size(), " bytes is over the limit of ", max_bytes, " bytes"));
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

absl::Status CheckHttpUrl(absl::string_view field, absl::string_view url) {
  if (absl::Status s = CheckSize(field, url, kMaxUrlBytes); !s.ok()) return s;
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

absl::Status CheckRetry(absl::string_view field, const conveyor::v1::RetryPolicy& retry) {
  if (retry.max_attempts() < 0 || retry.max_attempts() > 20) {
    return InvalidField(absl::StrCat(field, ".max_attempts"),
                        absl::StrCat("want 1..20 (0 = 3), got ", retry.max_attempts()));
  }
  if (absl::Status s = CheckDuration(absl::StrCat(field, ".initial_backoff"),
                                     retry.initial_backoff(), kOneHourSeconds, "1h");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckDuration(absl::StrCat(field, ".max_backoff"), retry.max_backoff(),
                                     kOneHourSeconds, "1h");
      !s.ok()) {
    return s;
  }
  double m = retry.backoff_multiplier();
  if (!std::isfinite(m) || (m != 0 && (m < 1 || m > 10))) {
    return InvalidField(absl::StrCat(field, ".backoff_multiplier"),
                        absl::StrCat("want 1..10 (0 = 2), got ", m));
  }
  double j = retry.jitter();
  if (!std::isfinite(j) || j < 0 || j > 1) {
    return InvalidField(absl::StrCat(field, ".jitter"), absl::StrCat("want 0..1, got ", j));
  }
  if (retry.retryable_codes_size() > kMaxRetryableCodes) {
    return InvalidField(absl::StrCat(field, ".retryable_codes"),
                        absl::StrCat("want at most ", kMaxRetryableCodes, " codes, got ",
                                     retry.retryable_codes_size()));
  }
  for (int i = 0; i < retry.retryable_codes_size(); ++i) {
    int code = retry.retryable_codes(i);
    if (code <= 0 || code > 16) {
      return InvalidField(absl::StrCat(field, ".retryable_codes[", i, "]"),
                          absl::StrCat("want a google.rpc.Code 1..16, got ", code));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckEncode(absl::string_view field, const conveyor::v1::EncodeOptions& out) {
  if (!conveyor::v1::ImageFormat_IsValid(out.format())) {
    return InvalidField(absl::StrCat(field, ".format"),
                        absl::StrCat("unknown image format ", out.format()));
  }
  if (out.quality() < 0 || out.quality() > 100) {
    return InvalidField(absl::StrCat(field, ".quality"),
                        absl::StrCat("want 1..100 (0 = 85), got ", out.quality()));
  }
  return absl::OkStatus();
}

// Cheap checks of a step's own spec; the worker validates fully.
absl::Status CheckStepSpec(const std::string& f, const Step& step) {
  switch (step.kind_case()) {
    case Step::kDownload: {
      const auto& s = step.download();
      if (absl::Status st = CheckHttpUrl(f + ".download.url", s.url()); !st.ok()) return st;
      if (s.max_bytes() < 0) {
        return InvalidField(f + ".download.max_bytes",
                            absl::StrCat("want >= 0, got ", s.max_bytes()));
      }
      return absl::OkStatus();
    }
    case Step::kResize: {
      const auto& s = step.resize();
      if (s.width() < 0 || s.width() > 16384) {
        return InvalidField(f + ".resize.width", absl::StrCat("want 0..16384, got ", s.width()));
      }
      if (s.height() < 0 || s.height() > 16384) {
        return InvalidField(f + ".resize.height",
                            absl::StrCat("want 0..16384, got ", s.height()));
      }
      if (s.width() == 0 && s.height() == 0) {
        return InvalidField(f + ".resize.width", "set width, height or both");
      }
      if ((s.fit() == conveyor::v1::ResizeSpec::COVER ||
           s.fit() == conveyor::v1::ResizeSpec::FILL) &&
          (s.width() == 0 || s.height() == 0)) {
        return InvalidField(f + ".resize.fit", "COVER and FILL need both width and height");
      }
      if (!conveyor::v1::ResizeSpec::Fit_IsValid(s.fit())) {
        return InvalidField(f + ".resize.fit", absl::StrCat("unknown fit ", s.fit()));
      }
      return CheckEncode(f + ".resize.output", s.output());
    }
    case Step::kFilter: {
      const auto& s = step.filter();
      if (s.ops_size() < 1 || s.ops_size() > kMaxFilterOps) {
        return InvalidField(f + ".filter.ops",
                            absl::StrCat("want 1..", kMaxFilterOps, " ops, got ", s.ops_size()));
      }
      for (int i = 0; i < s.ops_size(); ++i) {
        if (s.ops(i).op_case() == conveyor::v1::FilterOp::OP_NOT_SET) {
          return InvalidField(absl::StrCat(f, ".filter.ops[", i, "]"), "no operation set");
        }
      }
      return CheckEncode(f + ".filter.output", s.output());
    }
    case Step::kUpload: {
      const auto& s = step.upload();
      const std::string dest = f + ".upload.destination";
      if (absl::Status st = CheckSize(dest, s.destination(), kMaxDestinationBytes); !st.ok()) {
        return st;
      }
      if (absl::Status st = CheckNoControl(dest, s.destination(), true); !st.ok()) return st;
      if (!absl::StartsWith(s.destination(), "file:///") &&
          !(absl::StartsWith(s.destination(), "s3://") && s.destination().size() > 5)) {
        return InvalidField(dest, absl::StrCat("want file:///dir or s3://bucket[/prefix], got \"",
                                               Preview(s.destination()), "\""));
      }
      const std::string key = f + ".upload.key_template";
      if (absl::Status st = CheckSize(key, s.key_template(), kMaxKeyTemplateBytes); !st.ok()) {
        return st;
      }
      return CheckNoControl(key, s.key_template(), /*allow_space=*/false);
    }
    case Step::kWebhook:
      return CheckHttpUrl(f + ".webhook.url", step.webhook().url());
    case Step::KIND_NOT_SET:
      break;
  }
  return InvalidField(f, "set one of download, resize, filter, upload, webhook");
}

bool ValidLabelKey(absl::string_view key) {
  if (key.empty() || key.size() > kMaxLabelKeyChars) return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string Preview(absl::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) return absl::CHexEscape(value);
  return absl::StrCat(absl::CHexEscape(value.substr(0, max_bytes)), "... (", value.size(),
                      " bytes)");
}

absl::Status ValidateLabels(absl::string_view field,
                            const google::protobuf::Map<std::string, std::string>& labels) {
  if (labels.size() > static_cast<size_t>(kMaxLabels)) {
    return InvalidField(field,
                        absl::StrCat("want at most ", kMaxLabels, " labels, got ", labels.size()));
  }
  for (const auto& [key, value] : labels) {
    if (!ValidLabelKey(key)) {
      if (key.size() > kMaxLabelKeyChars) {
        return InvalidField(field, absl::StrCat("a key of ", key.size(),
                                                " bytes; keys are 1..63 chars of [a-z0-9_.-]"));
      }
      return InvalidField(absl::StrCat(field, "[", Preview(key), "]"),
                          "keys are 1..63 chars of [a-z0-9_.-]");
    }
    const std::string vfield = absl::StrCat(field, "[", key, "]");
    if (value.size() > kMaxLabelValueBytes) {
      return InvalidField(vfield, absl::StrCat("values are up to ", kMaxLabelValueBytes,
                                               " bytes, got ", value.size()));
    }
    if (absl::Status s = CheckNoControl(vfield, value, /*allow_space=*/true); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateTimestamp(absl::string_view field, const google::protobuf::Timestamp& t) {
  // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, as google/protobuf/timestamp.proto says.
  constexpr int64_t kMinSeconds = -62135596800;
  constexpr int64_t kMaxSeconds = 253402300799;
  if (t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds || t.nanos() < 0 ||
      t.nanos() > 999999999) {
    return InvalidField(field, absl::StrCat("want a time in 0001-01-01..9999-12-31, got ",
                                            t.seconds(), "s+", t.nanos(), "ns"));
  }
  return absl::OkStatus();
}

absl::Status ValidateIdempotencyKey(absl::string_view key) {
  if (key.size() > kMaxIdempotencyKeyChars) {
    return InvalidField("idempotency_key", absl::StrCat("want at most ", kMaxIdempotencyKeyChars,
                                                        " chars, got ", key.size()));
  }
  for (char c : key) {
    if (c < 0x21 || c > 0x7e || c == '|') {
      return InvalidField("idempotency_key", "want printable ASCII without spaces or '|'");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateChainSpec(const ChainSpec& spec, bool has_inline_source) {
  if (spec.steps_size() < 1 || spec.steps_size() > kMaxSteps) {
    return InvalidField("spec.steps", absl::StrCat("want 1..", kMaxSteps, " steps, got ",
                                                   spec.steps_size()));
  }
  if (absl::Status s = ValidateLabels("spec.labels", spec.labels()); !s.ok()) return s;
  if (!conveyor::v1::Priority_IsValid(spec.priority())) {
    return InvalidField("spec.priority", absl::StrCat("unknown priority ", spec.priority()));
  }
  if (absl::Status s =
          CheckDuration("spec.timeout", spec.timeout(), kMaxChainTimeoutSeconds, "30 days");
      !s.ok()) {
    return s;
  }

  DataKind flowing = has_inline_source ? DataKind::kImage : DataKind::kNone;
  int producer = -1;  // index of the step that produced `flowing`; -1 = the request
  for (int i = 0; i < spec.steps_size(); ++i) {
    const Step& step = spec.steps(i);
    const std::string f = absl::StrCat("spec.steps[", i, "]");
    if (absl::Status s = CheckStepSpec(f, step); !s.ok()) return s;
    if (absl::Status s = CheckDuration(f + ".timeout", step.timeout(), kOneHourSeconds, "1h");
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckRetry(f + ".retry", step.retry()); !s.ok()) return s;

    const StageKind kind = StepKind(step);
    const std::string field = absl::StrCat(f, ".", StageName(kind));
    auto from = [&]() -> std::string {
      if (producer < 0) return has_inline_source ? "the inline source" : "the request";
      return absl::StrCat("step ", producer, " (", StageName(StepKind(spec.steps(producer))), ")");
    };
    switch (kind) {
      case conveyor::v1::STAGE_KIND_DOWNLOAD:
        if (i == 0 && has_inline_source) {
          return InvalidField(field,
                              "the source image came with the request, so the chain must not "
                              "start with a download");
        }
        if (i != 0) {
          return InvalidField(field, "download can only be the first step");
        }
        flowing = DataKind::kImage;
        producer = i;
        break;
      case conveyor::v1::STAGE_KIND_RESIZE:
      case conveyor::v1::STAGE_KIND_FILTER:
      case conveyor::v1::STAGE_KIND_UPLOAD:
        if (flowing != DataKind::kImage) {
          if (i == 0) {
            return InvalidField(field,
                                "needs an image: start the chain with a download step or send "
                                "the source image with the request");
          }
          return InvalidField(field, absl::StrCat("needs an image but ", from(), " produces ",
                                                  KindName(flowing)));
        }
        flowing = kind == conveyor::v1::STAGE_KIND_UPLOAD ? DataKind::kStoredObject
                                                          : DataKind::kImage;
        producer = i;
        break;
      case conveyor::v1::STAGE_KIND_WEBHOOK:
        if (flowing == DataKind::kNone) {
          return InvalidField(field,
                              "needs something to report: start the chain with a download step "
                              "or send the source image with the request");
        }
        break;  // pass-through: kind and producer unchanged
      default:
        return InvalidField(f, "set one of download, resize, filter, upload, webhook");
    }
  }
  // Last, so a field over its own limit is named first.
  if (const size_t bytes = spec.ByteSizeLong(); bytes > kMaxSpecBytes) {
    return InvalidField("spec", absl::StrCat(bytes, " bytes serialized is over the limit of ",
                                             kMaxSpecBytes, " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace conveyor::orchestrator
