// The main() of the image workers (conveyor-resize, conveyor-filter): the
// decode-limit flags, the allocator setting for large buffers, then
// WorkerMain. Included only by main.cc files (CLI11 is heavy).
#ifndef CONVEYOR_STAGES_COMMON_IMAGE_CODEC_FLAGS_H_
#define CONVEYOR_STAGES_COMMON_IMAGE_CODEC_FLAGS_H_

#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "common/worker_main.h"

namespace conveyor {

// Image buffers are megabytes. A fixed mmap threshold (which also turns off
// glibc's adaptive one) hands each back to the kernel when freed, so an idle
// worker returns to its idle RSS instead of keeping the last peak. Call
// early in main(), before large allocations.
inline void ReturnFreedImageBuffers() { mallopt(M_MMAP_THRESHOLD, 1 << 20); }

// Adds --max-pixels (`max_pixels_help` says what it bounds for this stage)
// and --max-scans.
inline void AddDecodeLimitFlags(CLI::App& app, int64_t& max_pixels, int& max_scans,
                                const std::string& max_pixels_help) {
  AddEnvOption(app, "--max-pixels", max_pixels, max_pixels_help)
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 31))
      ->capture_default_str();
  AddEnvOption(app, "--max-scans", max_scans,
               "most scans of a progressive JPEG decoded (a scan bomb costs a pass over the "
               "image per scan); more gets INVALID_ARGUMENT TOO_MANY_SCANS")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
}

// The whole main() of an image worker: `Options` has max_pixels and
// max_scans, `Logic` is built from it, `Service` from the logic and a pool.
template <typename Options, typename Logic, typename Service>
int RunImageWorker(int argc, char** argv, v1::StageKind kind, const std::string& about,
                   const std::string& max_pixels_help) {
  WorkerMain worker(kind, about);
  ReturnFreedImageBuffers();
  Options options;
  AddDecodeLimitFlags(worker.app(), options.max_pixels, options.max_scans, max_pixels_help);
  if (auto exit_code = worker.Parse(argc, argv)) return *exit_code;
  const Logic logic(options);
  return worker.template Serve<Service>(logic);
}

}  // namespace conveyor

#endif  // CONVEYOR_STAGES_COMMON_IMAGE_CODEC_FLAGS_H_
