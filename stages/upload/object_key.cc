#include "stages/upload/object_key.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_details.h"
#include "common/step_context.h"

namespace conveyor::stages::upload {
namespace {

constexpr absl::string_view kTemplateField = "spec.key_template";

bool IsControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

// Quotes a user value for an error message, with control bytes made visible.
std::string Quoted(absl::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, 200)) {
    if (IsControl(c)) {
      absl::StrAppend(&out, "\\x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  if (text.size() > 200) out += "...";
  out += "\"";
  return out;
}

}  // namespace

absl::StatusOr<std::string> ChainIdOf(const conveyor::v1::StepContext& context,
                                      absl::string_view image_sha256_hex) {
  absl::StatusOr<std::string> id = ChainIdOfContext(context);
  if (!id.ok() || !id->empty()) return id;
  return absl::StrCat("direct-", image_sha256_hex.substr(0, 16));
}

std::string WriteOriginOf(const conveyor::v1::StepContext& context) {
  if (context.chain().empty()) return "";
  return absl::StrCat(context.chain(), "/steps/", context.step_index());
}

absl::Status ValidateObjectKey(absl::string_view key, absl::string_view field) {
  if (key.empty()) return InvalidField(field, "the object key is empty");
  if (absl::Status s = CheckFieldLength(field, key, kMaxKeyBytes); !s.ok()) return s;
  const auto unsafe = [&](absl::string_view why) {
    return WithErrorReason(InvalidField(field, absl::StrCat("the object key ", Quoted(key), " ",
                                                             why)),
                           kReasonUnsafeKey);
  };
  for (char c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' &&
        c != '-' && c != '=' && c != '/') {
      return unsafe(absl::StrCat("has ", Quoted(absl::string_view(&c, 1)),
                                 "; want only letters, digits, '.', '_', '-', '=' and '/'"));
    }
  }
  if (key.front() == '/') return unsafe("starts with '/'; keys are relative");
  if (key.back() == '/') return unsafe("ends with '/'; it must name an object");
  for (absl::string_view segment : absl::StrSplit(key, '/')) {
    if (segment.empty() || segment.front() == '.') {
      return unsafe("has an empty or dot-leading path segment");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ExpandKeyTemplate(absl::string_view key_template,
                                              const KeyFields& fields) {
  if (absl::Status s = CheckFieldLength(kTemplateField, key_template, kMaxKeyTemplateBytes);
      !s.ok()) {
    return s;
  }
  if (key_template.empty()) key_template = kDefaultKeyTemplate;
  std::string key;
  size_t at = 0;
  while (at < key_template.size()) {
    const char c = key_template[at];
    if (c == '}') {
      return InvalidField(kTemplateField, absl::StrCat("unbalanced '}' at offset ", at, " in ",
                                                       Quoted(key_template)));
    }
    if (c != '{') {
      key.push_back(c);
      ++at;
      continue;
    }
    const size_t close = key_template.find_first_of("{}", at + 1);
    if (close == absl::string_view::npos || key_template[close] != '}') {
      return InvalidField(kTemplateField, absl::StrCat("unbalanced '{' at offset ", at, " in ",
                                                       Quoted(key_template)));
    }
    const absl::string_view name = key_template.substr(at + 1, close - at - 1);
    if (name == "chain_id") {
      key += fields.chain_id;
    } else if (name == "step") {
      absl::StrAppend(&key, fields.step);
    } else if (name == "ext") {
      key += fields.ext;
    } else if (name == "width") {
      absl::StrAppend(&key, fields.width);
    } else if (name == "height") {
      absl::StrAppend(&key, fields.height);
    } else {
      return InvalidField(kTemplateField,
                          absl::StrCat("unknown placeholder ", Quoted(absl::StrCat("{", name, "}")),
                                       "; want {chain_id}, {step}, {ext}, {width} or {height}"));
    }
    at = close + 1;
  }
  absl::Status valid = ValidateObjectKey(key, kTemplateField);
  if (!valid.ok()) return valid;
  if (!fields.ext.empty() && !absl::EndsWith(key, absl::StrCat(".", fields.ext))) {
    return WithErrorReason(
        InvalidField(kTemplateField,
                     absl::StrCat("the object key ", Quoted(key), " must end in \".", fields.ext,
                                  "\", the extension of the image's own type; end the template "
                                  "in .{ext}")),
        kReasonWrongExtension);
  }
  return key;
}

}  // namespace conveyor::stages::upload
