// conveyor-download: the download stage worker.
#include <cstdint>
#include <iostream>

#include "common/worker_main.h"
#include "stages/common/http_client.h"
#include "stages/common/http_client_flags.h"
#include "stages/download/download.h"
#include "stages/download/download_service.h"

constexpr char kAbout[] =
    "conveyor-download: fetches images over HTTP(S) with libcurl (size, time and redirect "
    "limits; refuses loopback, private, link-local and metadata addresses on every hop), "
    "checks their magic number and serves conveyor.v1.DownloadStage over gRPC.";

int main(int argc, char** argv) {
  conveyor::WorkerMain worker(conveyor::v1::STAGE_KIND_DOWNLOAD, kAbout);
  CLI::App& app = worker.app();
  conveyor::HttpClientOptions http_options;
  conveyor::stages::download::DownloadOptions download_options;
  conveyor::AddHttpClientFlags(app, http_options, "time for a whole download, redirects included");
  conveyor::AddEnvOption(
      app, "--max-bytes", download_options.max_bytes,
      "largest body accepted, enforced while streaming; more is INVALID_ARGUMENT "
      "TOO_LARGE (keep it below --max-message-bytes)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  conveyor::AddEnvOption(app, "--max-redirects", download_options.max_redirects,
                         "redirects followed; one more is INVALID_ARGUMENT TOO_MANY_REDIRECTS")
      ->check(CLI::Range(0, 50))
      ->capture_default_str();
  if (auto exit_code = worker.Parse(argc, argv)) return *exit_code;
  // The image travels back in one gRPC message, with a few other fields.
  constexpr int64_t kResponseOverheadBytes = 64 << 10;
  const int64_t max_message_bytes = worker.server_options().max_message_bytes;
  if (download_options.max_bytes > max_message_bytes - kResponseOverheadBytes) {
    std::cerr << "--max-bytes: " << download_options.max_bytes
              << " does not fit in a response of --max-message-bytes " << max_message_bytes
              << " (keep it at least 64 KiB below)\n";
    return 2;
  }

  const conveyor::HttpClient client(http_options);
  const conveyor::stages::download::Downloader downloader(client, download_options);
  return worker.Serve<conveyor::stages::download::DownloadService>(downloader);
}
