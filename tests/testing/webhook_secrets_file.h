// A webhook secrets file (stages/webhook/webhook_secrets.h) in a temporary
// directory, for tests that start conveyor-webhook: the worker takes its
// secrets only from a file, never from argv.
//
//   WebhookSecretsFile secrets;                 // "default <kTestWebhookSecret>"
//   StageWorker<v1::WebhookStage> worker("conveyor-webhook", secrets.Flags());
#ifndef CONVEYOR_TESTS_TESTING_WEBHOOK_SECRETS_FILE_H_
#define CONVEYOR_TESTS_TESTING_WEBHOOK_SECRETS_FILE_H_

#include <string>
#include <vector>

#include "tests/testing/process_fixture.h"

namespace conveyor::testing {

// The default tenant's secret in a WebhookSecretsFile made without contents:
// base64 of "test-only-webhook-key-tenant-default". Only for tests.
inline constexpr char kTestWebhookSecret[] =
    "whsec_dGVzdC1vbmx5LXdlYmhvb2sta2V5LXRlbmFudC1kZWZhdWx0";

class WebhookSecretsFile {
 public:
  // Writes `contents` ("<tenant> <secret>" lines) to <temp dir>/webhook-secrets,
  // mode 0600.
  explicit WebhookSecretsFile(const std::string& contents = std::string("default ") +
                                                            kTestWebhookSecret + "\n");

  const std::string& path() const { return path_; }
  // {"--secrets-file", path()}.
  std::vector<std::string> Flags() const { return {"--secrets-file", path_}; }
  // Replaces the contents atomically (write a new file, rename it over the
  // old one), as an operator or a Kubernetes Secret volume update does.
  void Replace(const std::string& contents) const;

 private:
  TempDir dir_;
  std::string path_;
};

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_WEBHOOK_SECRETS_FILE_H_
