#include "stages/upload/object_key.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "stages/common/status_details.h"

namespace conveyor::stages::upload {
namespace {

constexpr absl::string_view kTemplateField = "spec.key_template";
constexpr absl::string_view kChainPrefix = "chains/";
constexpr size_t kMaxTemplateBytes = 1024;

bool IsControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

bool HasControl(absl::string_view text) {
  for (char c : text) {
    if (IsControl(c)) return true;
  }
  return false;
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
  const std::string& chain = context.chain();
  if (chain.empty()) {
    return absl::StrCat("direct-", image_sha256_hex.substr(0, 16));
  }
  if (!absl::StartsWith(chain, kChainPrefix)) {
    return InvalidField("context.chain", absl::StrCat("want \"chains/<id>\", got ", Quoted(chain)));
  }
  absl::string_view id = absl::string_view(chain).substr(kChainPrefix.size());
  if (id.empty() || id.find('/') != absl::string_view::npos || HasControl(id) || id == "." ||
      id == "..") {
    return InvalidField(
        "context.chain",
        absl::StrCat("want \"chains/<id>\" with a non-empty id without '/', got ", Quoted(chain)));
  }
  return std::string(id);
}

absl::Status ValidateObjectKey(absl::string_view key, absl::string_view field) {
  if (key.empty()) return InvalidField(field, "the object key is empty");
  if (key.size() > kMaxKeyBytes) {
    return InvalidField(field, absl::StrCat("the object key is ", key.size(),
                                            " bytes, want at most ", kMaxKeyBytes));
  }
  if (HasControl(key)) {
    return InvalidField(field,
                        absl::StrCat("the object key ", Quoted(key), " has a control character"));
  }
  if (key.front() == '/') {
    return InvalidField(
        field, absl::StrCat("the object key ", Quoted(key), " starts with '/'; keys are relative"));
  }
  if (key.back() == '/') {
    return InvalidField(field, absl::StrCat("the object key ", Quoted(key),
                                            " ends with '/'; it must name an object"));
  }
  for (absl::string_view segment : absl::StrSplit(key, '/')) {
    if (segment.empty() || segment == "." || segment == "..") {
      return InvalidField(field, absl::StrCat("the object key ", Quoted(key),
                                              " has an empty, \".\" or \"..\" path segment"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ExpandKeyTemplate(absl::string_view key_template,
                                              const KeyFields& fields) {
  if (key_template.empty()) key_template = kDefaultKeyTemplate;
  if (key_template.size() > kMaxTemplateBytes) {
    return InvalidField(kTemplateField, absl::StrCat("want at most ", kMaxTemplateBytes,
                                                     " bytes, got ", key_template.size()));
  }
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
  return key;
}

}  // namespace conveyor::stages::upload
