#include "stages/webhook/webhook_secrets.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/secret_file.h"
#include "common/status_details.h"
#include "common/step_context.h"
#include "stages/webhook/signature.h"

namespace conveyor::stages::webhook {
namespace {

bool SameTime(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

absl::Status LineError(int line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", what));
}

}  // namespace

absl::StatusOr<WebhookKeysByTenant> ParseWebhookSecrets(absl::string_view text) {
  WebhookKeysByTenant keys;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    // A trailing comment after the secret.
    auto comment = std::find_if(fields.begin(), fields.end(),
                                [](absl::string_view f) { return f.front() == '#'; });
    fields.erase(comment, fields.end());
    if (fields.size() != 2) {
      return LineError(line_number, "want \"<tenant> <secret>\"");
    }
    const absl::string_view tenant = fields[0];
    if (!IsTenantName(tenant)) {
      // Not quoted: a line with its fields swapped would echo the secret.
      return LineError(line_number, absl::StrCat("the first field is not a tenant name (1..",
                                                 kMaxTenantBytes, " letters, digits, '-' or '_')"));
    }
    const std::string what = absl::StrCat("line ", line_number, ": the secret");
    if (absl::Status valid = CheckSecretValue(fields[1], what); !valid.ok()) return valid;
    absl::StatusOr<std::string> key = ParseWebhookSecret(fields[1]);
    if (!key.ok()) return LineError(line_number, key.status().message());
    if (key->size() < kMinWebhookKeyBytes) {
      return LineError(line_number, absl::StrCat("the secret has ", key->size(),
                                                 " key bytes, want at least ", kMinWebhookKeyBytes,
                                                 " (whsec_ + base64 of 24..64 random "
                                                 "bytes)"));
    }
    std::vector<std::string>& active = keys[std::string(tenant)];
    if (std::find(active.begin(), active.end(), *key) != active.end()) continue;
    if (active.size() == kMaxSecretsPerTenant) {
      return LineError(line_number, absl::StrCat("tenant \"", tenant, "\" has more than ",
                                                 kMaxSecretsPerTenant, " secrets"));
    }
    active.push_back(*std::move(key));
  }
  if (keys.empty()) {
    return absl::FailedPreconditionError("holds no \"<tenant> <secret>\" line");
  }
  return keys;
}

bool WebhookSecrets::FileStamp::operator==(const FileStamp& o) const {
  return device == o.device && inode == o.inode && size == o.size &&
         SameTime(modified, o.modified) && SameTime(changed, o.changed);
}

WebhookSecrets::FileStamp WebhookSecrets::StampOf(const struct stat& info) {
  return {info.st_dev, info.st_ino, info.st_size, info.st_mtim, info.st_ctim};
}

absl::StatusOr<std::unique_ptr<WebhookSecrets>> WebhookSecrets::Load(std::string path) {
  // Stamp first: a change after it shows as a new stamp, so it is read again.
  struct stat info {};
  const FileStamp stamp = ::stat(path.c_str(), &info) == 0 ? StampOf(info) : FileStamp{};
  absl::StatusOr<std::string> text = ReadSecretFileText(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<WebhookKeysByTenant> keys = ParseWebhookSecrets(*text);
  if (!keys.ok()) {
    return absl::Status(keys.status().code(),
                        absl::StrCat("secrets file \"", path, "\": ", keys.status().message()));
  }
  return std::unique_ptr<WebhookSecrets>(
      new WebhookSecrets(std::move(path), stamp, *std::move(keys)));
}

void WebhookSecrets::ReloadIfChanged() const {
  struct stat info {};
  if (::stat(path_.c_str(), &info) != 0) return;  // gone for a moment: keep what we have
  const FileStamp stamp = StampOf(info);
  if (stamp == stamp_) return;
  stamp_ = stamp;
  absl::StatusOr<std::string> text = ReadSecretFileText(path_);
  absl::StatusOr<WebhookKeysByTenant> keys =
      text.ok() ? ParseWebhookSecrets(*text) : absl::StatusOr<WebhookKeysByTenant>(text.status());
  if (!keys.ok()) {
    LogLine(LogLevel::kWarning)
        .Add("msg",
             "webhook secrets file changed but is not valid; the previous secrets stay "
             "active")
        .Add("path", path_)
        .Add("error", keys.status().message());
    return;
  }
  keys_ = *std::move(keys);
  LogLine(LogLevel::kInfo)
      .Add("msg", "webhook secrets reloaded")
      .Add("path", path_)
      .Add("tenants", static_cast<int64_t>(keys_.size()));
}

absl::StatusOr<std::vector<std::string>> WebhookSecrets::KeysFor(absl::string_view tenant) const {
  if (tenant.empty()) tenant = kDefaultTenant;
  absl::MutexLock lock(&mu_);
  ReloadIfChanged();
  auto found = keys_.find(tenant);
  if (found == keys_.end()) {
    return WithErrorReason(absl::FailedPreconditionError(absl::StrCat(
                               "no webhook secret for tenant \"", tenant,
                               "\" in the worker's secrets file; an operator must add a \"", tenant,
                               " whsec_...\" line (docs/security.md, \"Webhook secrets\")")),
                           kReasonNoTenantSecret);
  }
  return found->second;
}

}  // namespace conveyor::stages::webhook
