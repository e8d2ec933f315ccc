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

}  // namespace

std::string Preview(absl::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) return absl::CHexEscape(value);
  return absl::StrCat(absl::CHexEscape(value.substr(0, max_bytes)), "... (", value.size(),
                      " bytes)");
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

absl::Status CheckEncodeOptions(absl::string_view field, const v1::EncodeOptions& out) {
  if (!v1::ImageFormat_IsValid(out.format())) {
    return InvalidField(absl::StrCat(field, ".format"),
                        absl::StrCat("unknown image format ", out.format()));
  }
  if (out.quality() < 0 || out.quality() > 100) {
    return InvalidField(absl::StrCat(field, ".quality"),
                        absl::StrCat("want 1..100 (0 = 85), got ", out.quality()));
  }
  return absl::OkStatus();
}

absl::Status CheckDownloadSpec(absl::string_view field, const v1::DownloadSpec& spec) {
  if (absl::Status s = CheckHttpUrl(absl::StrCat(field, ".url"), spec.url()); !s.ok()) return s;
  if (spec.max_bytes() < 0) {
    return InvalidField(absl::StrCat(field, ".max_bytes"),
                        absl::StrCat("want >= 0, got ", spec.max_bytes()));
  }
  return absl::OkStatus();
}

absl::Status CheckResizeSpec(absl::string_view field, const v1::ResizeSpec& spec) {
  if (spec.width() < 0 || spec.width() > kMaxImageSide) {
    return InvalidField(absl::StrCat(field, ".width"),
                        absl::StrCat("want 0..", kMaxImageSide, ", got ", spec.width()));
  }
  if (spec.height() < 0 || spec.height() > kMaxImageSide) {
    return InvalidField(absl::StrCat(field, ".height"),
                        absl::StrCat("want 0..", kMaxImageSide, ", got ", spec.height()));
  }
  if (spec.width() == 0 && spec.height() == 0) {
    return InvalidField(absl::StrCat(field, ".width"), "set width, height or both");
  }
  if ((spec.fit() == v1::ResizeSpec::COVER || spec.fit() == v1::ResizeSpec::FILL) &&
      (spec.width() == 0 || spec.height() == 0)) {
    return InvalidField(absl::StrCat(field, ".fit"), "COVER and FILL need both width and height");
  }
  if (!v1::ResizeSpec::Fit_IsValid(spec.fit())) {
    return InvalidField(absl::StrCat(field, ".fit"), absl::StrCat("unknown fit ", spec.fit()));
  }
  return CheckEncodeOptions(absl::StrCat(field, ".output"), spec.output());
}

absl::Status CheckFilterSpec(absl::string_view field, const v1::FilterSpec& spec) {
  if (spec.ops_size() < 1 || spec.ops_size() > kMaxFilterOps) {
    return InvalidField(absl::StrCat(field, ".ops"),
                        absl::StrCat("want 1..", kMaxFilterOps, " ops, got ", spec.ops_size()));
  }
  for (int i = 0; i < spec.ops_size(); ++i) {
    if (spec.ops(i).op_case() == v1::FilterOp::OP_NOT_SET) {
      return InvalidField(absl::StrCat(field, ".ops[", i, "]"), "no operation set");
    }
  }
  return CheckEncodeOptions(absl::StrCat(field, ".output"), spec.output());
}

absl::Status CheckUploadSpec(absl::string_view field, const v1::UploadSpec& spec) {
  const std::string dest = absl::StrCat(field, ".destination");
  if (absl::Status s = CheckSize(dest, spec.destination(), kMaxDestinationBytes); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckNoControl(dest, spec.destination(), true); !s.ok()) return s;
  if (!absl::StartsWith(spec.destination(), "file:///") &&
      !(absl::StartsWith(spec.destination(), "s3://") && spec.destination().size() > 5)) {
    return InvalidField(dest, absl::StrCat("want file:///dir or s3://bucket[/prefix], got \"",
                                           Preview(spec.destination()), "\""));
  }
  const std::string key = absl::StrCat(field, ".key_template");
  if (absl::Status s = CheckSize(key, spec.key_template(), kMaxKeyTemplateBytes); !s.ok()) {
    return s;
  }
  return CheckNoControl(key, spec.key_template(), /*allow_space=*/false);
}

absl::Status CheckWebhookSpec(absl::string_view field, const v1::WebhookSpec& spec) {
  return CheckHttpUrl(absl::StrCat(field, ".url"), spec.url());
}

}  // namespace conveyor
