// conveyor-webhook: the webhook stage worker.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "stages/common/http_client.h"
#include "stages/common/http_client_flags.h"
#include "common/server.h"
#include "common/server_flags.h"
#include "common/worker_pool.h"
#include "stages/webhook/signature.h"
#include "stages/webhook/webhook.h"
#include "stages/webhook/webhook_service.h"

int main(int argc, char** argv) {
  conveyor::BlockTerminationSignals();
  CLI::App app{
      "conveyor-webhook: POSTs the chain report as JSON, signed per Standard Webhooks "
      "(webhook-id, webhook-timestamp, webhook-signature), refusing loopback, private, "
      "link-local and metadata addresses, and serves conveyor.v1.WebhookStage over gRPC."};
  conveyor::ServerOptions options;
  options.listen = "127.0.0.1:50065";
  conveyor::AddServerFlags(app, options);

  conveyor::HttpClientOptions http_options;
  http_options.total_timeout = absl::Seconds(10);
  std::string secret;
  app.add_option("--secret", secret,
                 "signing secret, \"whsec_<base64>\" (Standard Webhooks) or raw text; prefer "
                 "the environment variable, command lines are visible to other users")
      ->envname("CONVEYOR_WEBHOOK_SECRET")
      ->required();
  conveyor::AddHttpClientFlags(app, http_options, "time for a whole delivery");
  if (auto exit_code = conveyor::ParseCommandLine(app, argc, argv)) return *exit_code;
  auto key = conveyor::stages::webhook::ParseWebhookSecret(secret);
  if (!key.ok()) {
    std::cerr << "--secret: " << key.status().message() << "\n";
    return 2;
  }

  const conveyor::HttpClient client(http_options);
  const conveyor::stages::webhook::WebhookSender sender(client, *std::move(key));
  conveyor::WorkerPool pool(options.worker_threads, options.max_queued);
  conveyor::stages::webhook::WebhookService service(sender, pool);
  return conveyor::RunServer(options, {&service});
}
