// The webhook worker's signing secrets, per tenant, from --secrets-file.
//
// The file: one "<tenant> <secret>" pair per line, '#' starts a comment
// line, blank lines are skipped. A tenant with several lines has several
// active secrets: every delivery of its chains is signed with each of them
// (rotation: add the new secret, move receivers over, remove the old one).
//
//   # tenant   secret (whsec_ + base64 of 24..64 random bytes)
//   default    whsec_3q2+7w0Kx8V1n2Yl8m3pQ4r5s6t7u8v9
//   acme       whsec_J1x0b4c6mN2pQ8rT5vW7yZ9aC3eG5iK7
//   acme       whsec_Tz7yW3uR9oM5kI1gE7cA3yX9vT5rP1nL    # new, rotating in
//
// Tenants are tenant names (common/step_context.h IsTenantName). Secrets are
// "whsec_<base64>" or raw text, of at least kMinWebhookKeyBytes key bytes,
// and no placeholder (common/secret_file.h). Errors name the line, never the
// secret.
#ifndef CONVEYOR_STAGES_WEBHOOK_WEBHOOK_SECRETS_H_
#define CONVEYOR_STAGES_WEBHOOK_WEBHOOK_SECRETS_H_

#include <sys/stat.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace conveyor::stages::webhook {

// Shortest signing key accepted, in bytes (Standard Webhooks asks for 24..64).
inline constexpr size_t kMinWebhookKeyBytes = 16;
// Most active secrets per tenant: each adds a signature to every delivery.
inline constexpr size_t kMaxSecretsPerTenant = 8;
// The tenant of a direct call (empty context.tenant).
inline constexpr absl::string_view kDefaultTenant = "default";
// ErrorInfo reason when the file has no secret for the call's tenant.
inline constexpr absl::string_view kReasonNoTenantSecret = "NO_TENANT_SECRET";

// Signing keys (ParseWebhookSecret's results) by tenant, in file order.
using WebhookKeysByTenant = std::map<std::string, std::vector<std::string>, std::less<>>;

// Parses the file's text. INVALID_ARGUMENT "line N: ..." for a malformed
// line, an unknown tenant name or a bad secret; FAILED_PRECONDITION for a
// placeholder or a file without any secret.
absl::StatusOr<WebhookKeysByTenant> ParseWebhookSecrets(absl::string_view text);

// The secrets file, read again whenever it changes (its inode, size or
// modification time differ from the last read: an edit in place, an atomic
// rename, a Kubernetes Secret volume update). A change that does not parse
// is logged once and ignored: the previous secrets stay active. Thread-safe.
class WebhookSecrets {
 public:
  // Reads and parses `path`; its errors (ReadSecretFileText's, then
  // ParseWebhookSecrets') prefixed with the path.
  static absl::StatusOr<std::unique_ptr<WebhookSecrets>> Load(std::string path);

  // The active keys of `tenant` ("" means kDefaultTenant), after a reload if
  // the file changed. FAILED_PRECONDITION naming the tenant (never a
  // secret) when the file has none for it: the delivery cannot be signed
  // and a retry would not help until an operator adds one.
  absl::StatusOr<std::vector<std::string>> KeysFor(absl::string_view tenant) const;

 private:
  struct FileStamp {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = -1;
    timespec modified{};
    timespec changed{};
    bool operator==(const FileStamp& o) const;
  };
  static FileStamp StampOf(const struct stat& info);

  WebhookSecrets(std::string path, FileStamp stamp, WebhookKeysByTenant keys)
      : path_(std::move(path)), stamp_(stamp), keys_(std::move(keys)) {}
  void ReloadIfChanged() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  mutable absl::Mutex mu_;
  // The stamp of the last read, parsed or not (so a bad file is not parsed
  // again on every delivery).
  mutable FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  mutable WebhookKeysByTenant keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace conveyor::stages::webhook

#endif  // CONVEYOR_STAGES_WEBHOOK_WEBHOOK_SECRETS_H_
