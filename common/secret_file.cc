#include "common/secret_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"

namespace conveyor {
namespace {

// Every placeholder secret this repository ships or has shipped: in the
// deploy files (k8s/secrets.yaml, compose.yaml defaults) and as examples in
// the docs. Add a
// value here whenever an example secret is written anywhere in the tree:
// copied examples are the secrets attackers try first.
constexpr absl::string_view kPlaceholderSecrets[] = {
    // deploy/k8s/secrets.yaml
    "change-me-redis-password",
    "whsec_Y2hhbmdlLW1lLWNoYW5nZS1tZS1jaGFuZ2UtbWU=",
    "change-me",
    // deploy/compose.yaml's CONVEYOR_WEBHOOK_SECRET default
    "whsec_Y29udmV5b3ItZGV2LW9ubHktY2hhbmdlLW1l",
    // The Standard Webhooks specification's example secret (docs/stages-http.md).
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    // Generic stand-ins.
    "changeme",
    "password",
    "secret",
    "placeholder",
    "example",
    "xxx",
    "whsec_...",
    "whsec_<base64>",
};

// Words that mark a value as written to be replaced.
constexpr absl::string_view kPlaceholderMarks[] = {"change-me",  "changeme",  "change_me",
                                                   "replace-me", "replaceme", "replace_me"};

bool HasPlaceholderMark(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (absl::string_view mark : kPlaceholderMarks) {
    if (absl::StrContains(lower, mark)) return true;
  }
  return false;
}

constexpr size_t kMaxSecretFileBytes = 1 << 20;

}  // namespace

absl::Span<const absl::string_view> PlaceholderSecrets() { return kPlaceholderSecrets; }

bool IsPlaceholderSecret(absl::string_view secret) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(secret);
  for (absl::string_view placeholder : kPlaceholderSecrets) {
    if (absl::EqualsIgnoreCase(trimmed, placeholder)) return true;
  }
  if (HasPlaceholderMark(trimmed)) return true;
  absl::string_view encoded = trimmed;
  std::string decoded;
  return absl::ConsumePrefix(&encoded, "whsec_") && absl::Base64Unescape(encoded, &decoded) &&
         HasPlaceholderMark(decoded);
}

absl::Status CheckSecretValue(absl::string_view secret, absl::string_view what) {
  if (absl::StripAsciiWhitespace(secret).empty()) {
    return absl::FailedPreconditionError(absl::StrCat(what, " is empty"));
  }
  if (IsPlaceholderSecret(secret)) {
    return absl::FailedPreconditionError(absl::StrCat(
        what,
        " is a placeholder value shipped in deploy/ or the docs, known to anyone; generate a "
        "real one (e.g. `openssl rand -base64 32`, docs/security.md)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSecretFileText(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    const int error = errno;
    const std::string why =
        absl::StrCat("cannot read secret file \"", path, "\": ", std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(why);
    if (error == EACCES) return absl::PermissionDeniedError(why);
    return absl::FailedPreconditionError(why);
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("secret file \"", path, "\" is not a regular file"));
  }
  if (static_cast<size_t>(info.st_size) > kMaxSecretFileBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "secret file \"", path, "\" is ", info.st_size, " bytes, over ", kMaxSecretFileBytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::PermissionDeniedError(absl::StrCat("cannot open secret file \"", path, "\""));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if ((info.st_mode & S_IROTH) != 0) {
    LogLine(LogLevel::kWarning)
        .Add("msg", "secret file is readable by every local user; chmod o-r it")
        .Add("path", path);
  }
  return std::move(text).str();
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadSecretFileText(path);
  if (!text.ok()) return text.status();
  absl::string_view secret = *text;
  if (!absl::ConsumeSuffix(&secret, "\r\n")) absl::ConsumeSuffix(&secret, "\n");
  const std::string what = absl::StrCat("the secret in \"", path, "\"");
  if (absl::StrContains(secret, '\n')) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " spans several lines; the file must hold the secret alone"));
  }
  if (absl::Status valid = CheckSecretValue(secret, what); !valid.ok()) return valid;
  return std::string(secret);
}

}  // namespace conveyor
