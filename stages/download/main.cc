// conveyor-download: the download stage worker.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "stages/common/http_client.h"
#include "stages/common/server.h"
#include "stages/common/server_flags.h"
#include "stages/common/ssrf_guard.h"
#include "stages/common/worker_pool.h"
#include "stages/download/download.h"
#include "stages/download/download_service.h"

int main(int argc, char** argv) {
  conveyor::BlockTerminationSignals();
  CLI::App app{
      "conveyor-download: fetches images over HTTP(S) with libcurl (size, time and redirect "
      "limits; refuses loopback, private, link-local and metadata addresses on every hop), "
      "checks their magic number and serves conveyor.v1.DownloadStage over gRPC."};
  conveyor::ServerOptions options;
  options.listen = "127.0.0.1:50061";
  conveyor::AddServerFlags(app, options);

  conveyor::HttpClientOptions http_options;
  conveyor::stages::download::DownloadOptions download_options;
  conveyor::AddDurationFlag(app, "--connect-timeout", http_options.connect_timeout,
                            "time to connect to a server, per redirect hop",
                            "CONVEYOR_CONNECT_TIMEOUT");
  conveyor::AddDurationFlag(app, "--total-timeout", http_options.total_timeout,
                            "time for a whole download, redirects included (the gRPC deadline "
                            "applies too, whichever is sooner)",
                            "CONVEYOR_TOTAL_TIMEOUT");
  app.add_option("--max-bytes", download_options.max_bytes,
                 "largest body accepted, enforced while streaming; more is INVALID_ARGUMENT "
                 "TOO_LARGE (keep it below --max-message-bytes)")
      ->envname("CONVEYOR_MAX_BYTES")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--max-redirects", download_options.max_redirects,
                 "redirects followed; one more is INVALID_ARGUMENT TOO_MANY_REDIRECTS")
      ->envname("CONVEYOR_MAX_REDIRECTS")
      ->check(CLI::Range(0, 50))
      ->capture_default_str();
  app.add_flag("--allow-private-networks", http_options.ssrf_policy.allow_private_networks,
               "also connect to loopback, private, link-local, metadata and other special "
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
  // The image travels back in one gRPC message, with a few other fields.
  constexpr int64_t kResponseOverheadBytes = 64 << 10;
  if (download_options.max_bytes > options.max_message_bytes - kResponseOverheadBytes) {
    std::cerr << "--max-bytes: " << download_options.max_bytes
              << " does not fit in a response of --max-message-bytes " << options.max_message_bytes
              << " (keep it at least 64 KiB below)\n";
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

  // Declared before the pool, so the pool's destructor joins any late task
  // before the objects it uses go away.
  const conveyor::HttpClient client(http_options);
  const conveyor::stages::download::Downloader downloader(client, download_options);
  conveyor::WorkerPool pool(options.worker_threads, options.max_queued);
  conveyor::stages::download::DownloadService service(downloader, pool);
  return conveyor::RunServer(options, {&service});
}
