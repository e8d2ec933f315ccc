// conveyor-webhook: the webhook stage worker.
#include <iostream>
#include <string>

#include "common/worker_main.h"
#include "stages/common/http_client.h"
#include "stages/common/http_client_flags.h"
#include "stages/webhook/webhook.h"
#include "stages/webhook/webhook_secrets.h"
#include "stages/webhook/webhook_service.h"

constexpr char kAbout[] =
    "conveyor-webhook: POSTs the chain report as JSON, signed per Standard Webhooks "
    "(webhook-id, webhook-timestamp, webhook-signature) with every active secret of the "
    "chain's tenant, refusing loopback, private, link-local and metadata addresses, "
    "and serves conveyor.v1.WebhookStage over gRPC.";

int main(int argc, char** argv) {
  conveyor::WorkerMain worker(conveyor::v1::STAGE_KIND_WEBHOOK, kAbout);
  conveyor::HttpClientOptions http_options;
  http_options.total_timeout = absl::Seconds(10);
  // A path, never a secret: command lines are visible to every local user.
  std::string secrets_file;
  worker.app()
      .add_option("--secrets-file", secrets_file,
                  "file of \"<tenant> <secret>\" lines (secret \"whsec_<base64>\"; several "
                  "lines per tenant while rotating), read again when it changes "
                  "(docs/security.md, \"Webhook secrets\")")
      ->envname("CONVEYOR_WEBHOOK_SECRETS_FILE")
      ->required();
  conveyor::AddHttpClientFlags(worker.app(), http_options, "time for a whole delivery");
  if (auto exit_code = worker.Parse(argc, argv)) return *exit_code;
  auto secrets = conveyor::stages::webhook::WebhookSecrets::Load(secrets_file);
  if (!secrets.ok()) {
    std::cerr << "conveyor-webhook: --secrets-file: " << secrets.status().message() << "\n";
    return 2;
  }

  const conveyor::HttpClient client(http_options);
  const conveyor::stages::webhook::WebhookSender sender(client, **secrets);
  return worker.Serve<conveyor::stages::webhook::WebhookService>(sender);
}
