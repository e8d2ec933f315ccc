// conveyor-filter: the filter stage worker.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdint>

#include "common/server.h"
#include "common/server_flags.h"
#include "common/worker_pool.h"
#include "stages/filter/filter.h"
#include "stages/filter/filter_service.h"

int main(int argc, char** argv) {
  conveyor::BlockTerminationSignals();
  // Image buffers are megabytes. A fixed mmap threshold (which also turns off
  // glibc's adaptive one) hands each back to the kernel when freed, so an
  // idle worker returns to its idle RSS instead of keeping the last peak.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  CLI::App app{
      "conveyor-filter: applies an ordered list of OpenCV operations (grayscale, gaussian blur, "
      "sharpen, sepia, brightness/contrast, invert, Canny edges) to a JPEG, PNG or WebP image "
      "and serves conveyor.v1.FilterStage over gRPC."};
  conveyor::ServerOptions options;
  options.listen = "127.0.0.1:50063";
  conveyor::AddServerFlags(app, options);
  conveyor::stages::filter::FilterOptions filter_options;
  app.add_option("--max-pixels", filter_options.max_pixels,
                 "largest image (width x height, read from its header before decoding) "
                 "accepted; larger gets INVALID_ARGUMENT IMAGE_TOO_LARGE")
      ->envname("CONVEYOR_MAX_PIXELS")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 31))
      ->capture_default_str();
  app.add_option("--max-scans", filter_options.max_scans,
                 "most scans of a progressive JPEG decoded (a scan bomb costs a pass over the "
                 "image per scan); more gets INVALID_ARGUMENT TOO_MANY_SCANS")
      ->envname("CONVEYOR_MAX_SCANS")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  if (auto exit_code = conveyor::ParseCommandLine(app, argc, argv)) return *exit_code;

  // Declared before the pool, so the pool's destructor joins any late task
  // before the filterer it uses goes away.
  const conveyor::stages::filter::Filterer filterer(filter_options);
  conveyor::WorkerPool pool(options.worker_threads, options.max_queued);
  conveyor::stages::filter::FilterService service(filterer, pool);
  return conveyor::RunServer(options, {&service});
}
