// conveyor-bench's load runs: the scenario (image and chain), one chain
// followed from submit to its end, and a run of many with C in flight,
// summarised as throughput, latency percentiles and per-stage medians.
#ifndef CONVEYOR_TOOLS_LOADBENCH_LOAD_RUN_H_
#define CONVEYOR_TOOLS_LOADBENCH_LOAD_RUN_H_

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"

namespace conveyor::tools {

inline constexpr const char* kPhoto = "/usr/share/backgrounds/mate/nature/Storm.jpg";

struct LoadOptions {
  std::string server = "127.0.0.1:50051";
  std::string scenario = "tiny";
  int chains = 200;
  int concurrency = 1;
  int warmup = 20;
  int runs = 3;
  std::string upload_dir;
  std::string source = "download";
  std::string pids_file;
  std::vector<std::string> pids;
  std::string photo = kPhoto;
  // The bearer token every call sends (CONVEYOR_TOKEN, as the CLI's);
  // none if empty.
  std::string token;
};

// The source image of a scenario, encoded once.
absl::StatusOr<std::string> ScenarioImage(const LoadOptions& options);

conveyor::v1::SubmitChainRequest ScenarioRequest(const LoadOptions& options,
                                                 const std::string& image, int http_port);

struct Sample {
  bool ok = false;
  std::string failure;
  absl::Duration e2e;
  std::vector<absl::Duration> steps;  // StepStatus.duration, index-aligned
};

// Submits `request`, follows it with WatchChain to its end, then reads the
// steps' durations with GetChain; each call sends `token` as
// "authorization: Bearer <token>" unless it is empty.
Sample RunChain(conveyor::v1::Orchestrator::Stub& stub,
                const conveyor::v1::SubmitChainRequest& request, const std::string& token);

// Nearest-rank percentile of sorted values.
absl::Duration Percentile(const std::vector<absl::Duration>& sorted, double p);

template <typename T>
inline T Median(std::vector<T> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? T() : values[values.size() / 2];
}

struct RunResult {
  double throughput = 0;
  absl::Duration p50, p90, p99, max;
  std::vector<absl::Duration> stage_median;  // per step index
  absl::Duration overhead_median;
  double overhead_percent = 0;  // median over chains of overhead / e2e
  int failures = 0;
  std::vector<std::string> failure_samples;
};

// options.warmup chains, then options.chains with options.concurrency in
// flight.
RunResult RunOnce(conveyor::v1::Orchestrator::Stub& stub,
                  const conveyor::v1::SubmitChainRequest& request, const LoadOptions& options);

}  // namespace conveyor::tools

#endif  // CONVEYOR_TOOLS_LOADBENCH_LOAD_RUN_H_
