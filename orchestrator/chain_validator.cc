#include "orchestrator/chain_validator.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/duration.pb.h"
#include "common/stage_registry.h"
#include "common/status_details.h"
#include "common/step_specs.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::ChainSpec;
using conveyor::v1::StageKind;
using conveyor::v1::Step;

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

bool ValidLabelKey(absl::string_view key) {
  if (key.empty() || key.size() > kMaxLabelKeyChars) return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

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

  DataKind flowing = has_inline_source ? DataKind::kImage : DataKind::kNothing;
  int producer = -1;  // index of the step that produced `flowing`; -1 = the request
  for (int i = 0; i < spec.steps_size(); ++i) {
    const Step& step = spec.steps(i);
    const std::string f = absl::StrCat("spec.steps[", i, "]");
    const StageInfo* stage = StageOfStep(step);
    if (stage == nullptr) {
      return InvalidField(f, absl::StrCat("set one of ", StageNames()));
    }
    if (absl::Status s = stage->check_spec(f, step); !s.ok()) return s;
    if (absl::Status s = CheckDuration(f + ".timeout", step.timeout(), kOneHourSeconds, "1h");
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckRetry(f + ".retry", step.retry()); !s.ok()) return s;

    const std::string field = absl::StrCat(f, ".", stage->name);
    auto from = [&]() -> std::string {
      if (producer < 0) return has_inline_source ? "the inline source" : "the request";
      return absl::StrCat("step ", producer, " (", StageName(StepKind(spec.steps(producer))), ")");
    };
    switch (stage->consumes) {
      case DataKind::kNothing:
        if (i == 0 && has_inline_source) {
          return InvalidField(field, absl::StrCat("the source image came with the request, so the "
                                                  "chain must not start with a ",
                                                  stage->name));
        }
        if (i != 0) {
          return InvalidField(field, absl::StrCat(stage->name, " can only be the first step"));
        }
        break;
      case DataKind::kAny:
        if (flowing == DataKind::kNothing) {
          return InvalidField(field,
                              "needs something to report: start the chain with a download step "
                              "or send the source image with the request");
        }
        break;
      default:
        if (flowing != stage->consumes) {
          if (i == 0) {
            return InvalidField(field, absl::StrCat("needs ", DataKindName(stage->consumes),
                                                    ": start the chain with a download step or "
                                                    "send the source image with the request"));
          }
          return InvalidField(field, absl::StrCat("needs ", DataKindName(stage->consumes), " but ",
                                                  from(), " produces ", DataKindName(flowing)));
        }
        break;
    }
    // A stage that passes its input on leaves kind and producer unchanged.
    if (stage->produces != DataKind::kAny) {
      flowing = stage->produces;
      producer = i;
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
