// conveyor-webhook: the webhook stage worker.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "stages/common/http_client.h"
#include "stages/common/server.h"
#include "stages/common/server_flags.h"
#include "stages/common/ssrf_guard.h"
#include "stages/common/worker_pool.h"
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
  conveyor::AddDurationFlag(app, "--connect-timeout", http_options.connect_timeout,
                            "time to connect to the receiver", "CONVEYOR_CONNECT_TIMEOUT");
  conveyor::AddDurationFlag(app, "--total-timeout", http_options.total_timeout,
                            "time for a whole delivery (the gRPC deadline applies too, "
                            "whichever is sooner)",
                            "CONVEYOR_TOTAL_TIMEOUT");
  app.add_flag("--allow-private-networks", http_options.ssrf_policy.allow_private_networks,
               "also deliver to loopback, private, link-local, metadata and other special "
               "addresses (local use and tests only)")
      ->envname("CONVEYOR_ALLOW_PRIVATE_NETWORKS");
  app.add_option("--ca-file", http_options.ca_file,
                 "PEM file of CA certificates trusted for https (default: the system store)")
      ->envname("CONVEYOR_CA_FILE")
      ->check(CLI::ExistingFile);
  std::vector<std::string> allow_cidrs;
  app.add_option("--allow-cidr", allow_cidrs,
                 "a network to allow whatever its class, e.g. 127.0.0.1/32; repeatable "
                 "(comma-separated in the environment variable)")
      ->envname("CONVEYOR_ALLOW_CIDR")
      ->delimiter(',')
      ->type_name("CIDR");
  CLI11_PARSE(app, argc, argv);
  auto key = conveyor::stages::webhook::ParseWebhookSecret(secret);
  if (!key.ok()) {
    std::cerr << "--secret: " << key.status().message() << "\n";
    return 2;
  }
  for (const std::string& text : allow_cidrs) {
    auto network = conveyor::ParseIpNetwork(text);
    if (!network.ok()) {
      std::cerr << "--allow-cidr: " << network.status().message() << "\n";
      return 2;
    }
    http_options.ssrf_policy.allowed_networks.push_back(*network);
  }

  const conveyor::HttpClient client(http_options);
  const conveyor::stages::webhook::WebhookSender sender(client, *std::move(key));
  conveyor::WorkerPool pool(options.worker_threads, options.max_queued);
  conveyor::stages::webhook::WebhookService service(sender, pool);
  return conveyor::RunServer(options, {&service});
}
