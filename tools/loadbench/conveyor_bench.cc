// conveyor-bench: a load generator for a running Conveyor stack (e.g. one
// started by tools/dev-up.sh). Submits N chains with C in flight, follows each
// with WatchChain, and reports throughput, end-to-end latency percentiles,
// per-stage time (StepStatus.duration), coordinator overhead (end-to-end minus
// the steps' durations), failures and the peak RSS (VmHWM) of each process of
// the stack. Several runs; the table shows the median of each metric.
//
// It serves the source image and receives the webhooks itself, from an HTTP
// server on 127.0.0.1, so the download and webhook workers must allow private
// networks (dev-up.sh starts them so).
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/chain_builder.h"
#include "common/stage_registry.h"
#include "common/tls_credentials.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "tools/common/proc_stats.h"
#include "tools/loadbench/load_run.h"

namespace conveyor::tools {
namespace {

using conveyor::v1::Orchestrator;
using conveyor::v1::SubmitChainRequest;

std::string Ms(absl::Duration d) { return absl::StrFormat("%.2f", absl::ToDoubleMilliseconds(d)); }

// name -> pid, from dev-up's pids file ("name pid port" lines) and --pid.
std::map<std::string, int> Processes(const LoadOptions& options) {
  std::map<std::string, int> pids;
  if (!options.pids_file.empty()) {
    std::ifstream in(options.pids_file);
    std::string name;
    int pid = 0;
    std::string port;
    while (in >> name >> pid >> port) pids[name] = pid;
  }
  for (const std::string& entry : options.pids) {
    std::pair<std::string, std::string> kv = absl::StrSplit(entry, absl::MaxSplits('=', 1));
    int pid = 0;
    if (absl::SimpleAtoi(kv.second, &pid)) pids[kv.first] = pid;
  }
  return pids;
}

int Main(int argc, char** argv) {
  CLI::App app{"conveyor-bench: load-test a running Conveyor stack"};
  LoadOptions options;
  app.add_option("--server", options.server, "Orchestrator address")
      ->envname("CONVEYOR_SERVER")
      ->capture_default_str();
  // TLS as the CLI has it (same flags and env, so `source <dev-up state>/env`
  // is enough): common/tls_credentials.h.
  conveyor::ChannelTlsOptions tls;
  app.add_option("--tls-ca", tls.ca_file, "PEM CA of the orchestrator's certificate")
      ->envname("CONVEYOR_TLS_CA");
  app.add_option("--tls-cert", tls.cert_file, "PEM client certificate (mTLS)")
      ->envname("CONVEYOR_TLS_CERT");
  app.add_option("--tls-key", tls.key_file, "PEM key of --tls-cert")->envname("CONVEYOR_TLS_KEY");
  app.add_option("--tls-server-name", tls.server_name, "name to verify in its certificate")
      ->envname("CONVEYOR_TLS_SERVER_NAME");
  app.add_flag("--insecure", tls.insecure, "plaintext (only without --tls-* flags)")
      ->envname("CONVEYOR_INSECURE");
  // The bearer token from the environment only, never argv (as the CLI).
  if (const char* token = std::getenv("CONVEYOR_TOKEN"); token != nullptr) options.token = token;
  app.add_option("--scenario", options.scenario,
                 "tiny (a: 64x48 image, cheap steps), 2mp (b: 2 MP photo), 12mp (c: 12 MP photo)")
      ->check(CLI::IsMember({"tiny", "2mp", "12mp"}))
      ->capture_default_str();
  app.add_option("--chains", options.chains, "Chains per run")->capture_default_str();
  app.add_option("--concurrency", options.concurrency, "Chains in flight")->capture_default_str();
  app.add_option("--warmup", options.warmup, "Unmeasured chains before each run")
      ->capture_default_str();
  app.add_option("--runs", options.runs, "Runs; the report shows medians")->capture_default_str();
  app.add_option("--upload-dir", options.upload_dir,
                 "Directory for the upload step (under the upload worker's --file-root)")
      ->envname("CONVEYOR_DEV_OUT")
      ->required();
  app.add_option("--source", options.source, "download (5 steps) or inline (4 steps)")
      ->check(CLI::IsMember({"download", "inline"}))
      ->capture_default_str();
  app.add_option("--pids-file", options.pids_file,
                 "dev-up's <state>/pids, for the peak RSS of each process");
  app.add_option("--pid", options.pids, "name=pid of a process to report peak RSS for")
      ->allow_extra_args(false);
  app.add_option("--photo", options.photo, "Photo scaled for the 2mp/12mp scenarios")
      ->capture_default_str();
  app.footer(
      "Calls send CONVEYOR_TOKEN as a bearer token (the env file sets it).\n"
      "Example (after tools/dev-up.sh; source <state>/env):\n"
      "  conveyor-bench --scenario tiny --chains 2000 --concurrency 64 --runs 5 \\\n"
      "      --pids-file $CONVEYOR_DEV_STATE/pids");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (options.chains < 1 || options.concurrency < 1 || options.runs < 1 || options.warmup < 0) {
    std::cerr << "error: --chains, --concurrency and --runs must be >= 1\n";
    return 2;
  }

  absl::StatusOr<std::string> image = ScenarioImage(options);
  if (!image.ok()) {
    std::cerr << "error: " << image.status().message() << "\n";
    return 2;
  }
  std::atomic<int64_t> webhooks{0};
  httplib::Server http;
  http.Get("/source.jpg", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(*image, "image/jpeg");
  });
  http.Post("/hook", [&](const httplib::Request&, httplib::Response& res) {
    ++webhooks;
    res.status = 200;
  });
  const int http_port = http.bind_to_any_port("127.0.0.1");
  if (http_port <= 0) {
    std::cerr << "error: cannot bind an HTTP port on 127.0.0.1\n";
    return 1;
  }
  std::jthread http_thread([&] { http.listen_after_bind(); });

  absl::StatusOr<conveyor::ChannelSecurity> security = conveyor::MakeChannelSecurity(tls);
  if (!security.ok()) {
    std::cerr << "error: " << security.status().message() << "\n";
    return 2;
  }
  grpc::ChannelArguments channel_args;
  security->ApplyTo(channel_args);
  auto channel =
      grpc::CreateCustomChannel(options.server, security->credentials, channel_args);
  auto stub = Orchestrator::NewStub(channel);
  const SubmitChainRequest request = ScenarioRequest(options, *image, http_port);

  const std::map<std::string, int> processes = Processes(options);
  std::map<std::string, double> cpu_before;
  for (const auto& [name, pid] : processes) cpu_before[name] = CpuSeconds(pid);
  const double self_before = CpuSeconds(getpid());

  std::vector<RunResult> runs;
  for (int r = 0; r < options.runs; ++r) {
    runs.push_back(RunOnce(*stub, request, options));
    const RunResult& run = runs.back();
    std::cerr << absl::StrFormat(
        "run %d: %.1f chains/s  p50 %s ms  p99 %s ms  overhead %s ms "
        "(%.1f%%)  failures %d\n",
        r + 1, run.throughput, Ms(run.p50), Ms(run.p99), Ms(run.overhead_median),
        run.overhead_percent, run.failures);
    for (const std::string& f : run.failure_samples) std::cerr << "  failure: " << f << "\n";
  }
  http.stop();
  // CPU per chain of each process, over all runs (warm-up chains included).
  const double total_chains = static_cast<double>(options.runs) * (options.chains + options.warmup);
  std::vector<std::string> cpu_cells;
  for (const auto& [name, pid] : processes) {
    const double after = CpuSeconds(pid);
    if (after < 0 || cpu_before[name] < 0) continue;
    cpu_cells.push_back(
        absl::StrFormat("%s=%.3f", name, (after - cpu_before[name]) * 1000 / total_chains));
  }
  cpu_cells.push_back(absl::StrFormat("conveyor-bench=%.3f",
                                      (CpuSeconds(getpid()) - self_before) * 1000 / total_chains));

  const auto median_of = [&](auto field) {
    std::vector<decltype(field(runs[0]))> values;
    for (const RunResult& run : runs) values.push_back(field(run));
    return Median(values);
  };
  std::vector<std::string> stage_names;
  for (const auto& step : request.spec().steps()) {
    stage_names.emplace_back(StageName(StepKind(step)));
  }
  std::vector<std::string> stage_cells;
  for (size_t i = 0; i < stage_names.size(); ++i) {
    stage_cells.push_back(absl::StrCat(stage_names[i], " ", Ms(median_of([&](const RunResult& run) {
                                         return i < run.stage_median.size() ? run.stage_median[i]
                                                                            : absl::ZeroDuration();
                                       }))));
  }
  int failures = 0;
  for (const RunResult& run : runs) failures += run.failures;

  std::cout << "Machine: " << Machine() << "\n";
  std::cout << "Command: " << absl::StrJoin(std::vector<std::string>(argv, argv + argc), " ")
            << "\n";
  std::cout << "Image: " << image->size() << " bytes; " << options.runs << " runs x "
            << options.chains << " chains (+" << options.warmup
            << " warm-up each); medians of the runs; times in ms\n\n";
  std::cout << "| scenario | concurrency | chains/s | p50 | p90 | p99 | max | per stage (median) "
               "| coordinator overhead | failures |\n";
  std::cout << "|---|---|---|---|---|---|---|---|---|---|\n";
  std::cout << absl::StrFormat(
      "| %s | %d | %.1f | %s | %s | %s | %s | %s | %s (%.1f %%) | %d |\n", options.scenario,
      options.concurrency, median_of([](const RunResult& r) { return r.throughput; }),
      Ms(median_of([](const RunResult& r) { return r.p50; })),
      Ms(median_of([](const RunResult& r) { return r.p90; })),
      Ms(median_of([](const RunResult& r) { return r.p99; })),
      Ms(median_of([](const RunResult& r) { return r.max; })), absl::StrJoin(stage_cells, ", "),
      Ms(median_of([](const RunResult& r) { return r.overhead_median; })),
      median_of([](const RunResult& r) { return r.overhead_percent; }), failures);

  std::cout << "\nCPU ms per chain: " << absl::StrJoin(cpu_cells, " ") << "\n";
  if (!processes.empty()) {
    std::cout << "\nPeak RSS (VmHWM):";
    for (const auto& [name, pid] : processes) {
      const int64_t kib = PeakRssKib(pid);
      std::cout << " " << name << "="
                << (kib < 0 ? std::string("?") : absl::StrFormat("%.1f MiB", kib / 1024.0));
    }
    std::cout << "\n";
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace conveyor::tools

int main(int argc, char** argv) { return conveyor::tools::Main(argc, argv); }
