// conveyor-webhook: the webhook stage worker.
#include <iostream>
#include <string>

#include "common/worker_main.h"
#include "stages/common/http_client.h"
#include "stages/common/http_client_flags.h"
#include "stages/webhook/signature.h"
#include "stages/webhook/webhook.h"
#include "stages/webhook/webhook_service.h"

constexpr char kAbout[] =
    "conveyor-webhook: POSTs the chain report as JSON, signed per Standard Webhooks "
    "(webhook-id, webhook-timestamp, webhook-signature), "
    "refusing loopback, private, link-local and metadata addresses, "
    "and serves conveyor.v1.WebhookStage over gRPC.";

int main(int argc, char** argv) {
  conveyor::WorkerMain worker(conveyor::v1::STAGE_KIND_WEBHOOK, kAbout);
  conveyor::HttpClientOptions http_options;
  http_options.total_timeout = absl::Seconds(10);
  std::string secret;
  worker.app()
      .add_option("--secret", secret,
                  "signing secret, \"whsec_<base64>\" (Standard Webhooks) or raw text; prefer "
                  "the environment variable, command lines are visible to other users")
      ->envname("CONVEYOR_WEBHOOK_SECRET")
      ->required();
  conveyor::AddHttpClientFlags(worker.app(), http_options, "time for a whole delivery");
  if (auto exit_code = worker.Parse(argc, argv)) return *exit_code;
  auto key = conveyor::stages::webhook::ParseWebhookSecret(secret);
  if (!key.ok()) {
    std::cerr << "--secret: " << key.status().message() << "\n";
    return 2;
  }

  const conveyor::HttpClient client(http_options);
  const conveyor::stages::webhook::WebhookSender sender(client, *std::move(key));
  return worker.Serve<conveyor::stages::webhook::WebhookService>(sender);
}
