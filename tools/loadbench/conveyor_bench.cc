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
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
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
#include "client/format.h"
#include "common/proto_time.h"
#include "common/stage_registry.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"

namespace conveyor::tools {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;
using conveyor::v1::Orchestrator;
using conveyor::v1::SubmitChainRequest;

constexpr const char* kPhoto = "/usr/share/backgrounds/mate/nature/Storm.jpg";

struct Options {
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
};

// The source image of a scenario, encoded once.
absl::StatusOr<std::string> ScenarioImage(const Options& options) {
  cv::Mat image;
  if (options.scenario == "tiny") {
    image = cv::Mat(48, 64, CV_8UC3);
    cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
  } else {
    cv::Mat photo = cv::imread(options.photo, cv::IMREAD_COLOR);
    if (photo.empty()) return absl::NotFoundError(absl::StrCat("cannot read ", options.photo));
    // Scale the real photo to the scenario's pixel count (aspect kept).
    const double megapixels = options.scenario == "2mp" ? 2.0 : 12.0;
    const double scale = std::sqrt(megapixels * 1e6 / (photo.cols * photo.rows));
    cv::resize(photo, image, cv::Size(), scale, scale,
               scale < 1 ? cv::INTER_AREA : cv::INTER_CUBIC);
  }
  std::vector<uchar> bytes;
  cv::imencode(".jpg", image, bytes, {cv::IMWRITE_JPEG_QUALITY, 90});
  return std::string(bytes.begin(), bytes.end());
}

SubmitChainRequest ScenarioRequest(const Options& options, const std::string& image,
                                   int http_port) {
  SubmitChainRequest request;
  auto& spec = *request.mutable_spec();
  const std::string base = absl::StrCat("http://127.0.0.1:", http_port);
  if (options.source == "inline") {
    request.mutable_source()->set_data(image);
  } else {
    spec.add_steps()->mutable_download()->set_url(base + "/source.jpg");
  }
  auto* resize = spec.add_steps()->mutable_resize();
  auto* filter = spec.add_steps()->mutable_filter();
  if (options.scenario == "tiny") {
    resize->set_width(32);
    filter->add_ops()->mutable_invert();
  } else {
    resize->set_width(800);
    filter->add_ops()->mutable_sepia();
  }
  auto* upload = spec.add_steps()->mutable_upload();
  upload->set_destination("file://" + options.upload_dir);
  upload->set_key_template("bench-{chain_id}.{ext}");
  spec.add_steps()->mutable_webhook()->set_url(base + "/hook");
  (*spec.mutable_labels())["bench"] = options.scenario;
  return request;
}

struct Sample {
  bool ok = false;
  std::string failure;
  absl::Duration e2e;
  std::vector<absl::Duration> steps;  // StepStatus.duration, index-aligned
};

Sample RunChain(Orchestrator::Stub& stub, const SubmitChainRequest& request) {
  Sample sample;
  const absl::Time start = absl::Now();
  Chain chain;
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(start + absl::Seconds(30)));
    grpc::Status status = stub.SubmitChain(&context, request, &chain);
    if (!status.ok()) {
      sample.failure = absl::StrCat("submit: ", client::CodeName(status.error_code()), ": ",
                                    status.error_message());
      return sample;
    }
  }
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(start + absl::Seconds(120)));
    conveyor::v1::WatchChainRequest watch;
    watch.set_name(chain.name());
    auto reader = stub.WatchChain(&context, watch);
    ChainEvent event;
    while (reader->Read(&event)) {
    }
    grpc::Status status = reader->Finish();
    sample.e2e = absl::Now() - start;
    if (!status.ok()) {
      sample.failure = absl::StrCat("watch: ", client::CodeName(status.error_code()), ": ",
                                    status.error_message());
      return sample;
    }
  }
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  conveyor::v1::GetChainRequest get;
  get.set_name(chain.name());
  grpc::Status status = stub.GetChain(&context, get, &chain);
  if (!status.ok()) {
    sample.failure = absl::StrCat("get: ", client::CodeName(status.error_code()));
    return sample;
  }
  if (chain.state() != conveyor::v1::SUCCEEDED) {
    sample.failure = absl::StrCat(client::StateName(chain.state()), ": ",
                                  client::FormatRpcStatus(chain.error()));
    return sample;
  }
  for (const auto& step : chain.steps()) {
    sample.steps.push_back(conveyor::FromProtoDuration(step.duration()));
  }
  sample.ok = true;
  return sample;
}

// Nearest-rank percentile of sorted values.
absl::Duration Percentile(const std::vector<absl::Duration>& sorted, double p) {
  if (sorted.empty()) return absl::ZeroDuration();
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * sorted.size()));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

template <typename T>
T Median(std::vector<T> values) {
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

RunResult RunOnce(Orchestrator::Stub& stub, const SubmitChainRequest& request,
                  const Options& options) {
  // Warm-up: connections, caches, the coordinator's first dispatches.
  for (int i = 0; i < options.warmup; ++i) RunChain(stub, request);

  std::vector<Sample> samples(options.chains);
  std::atomic<int> next{0};
  const absl::Time start = absl::Now();
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < std::min(options.concurrency, options.chains); ++t) {
      threads.emplace_back([&] {
        for (int i = next++; i < options.chains; i = next++) samples[i] = RunChain(stub, request);
      });
    }
  }
  const absl::Duration wall = absl::Now() - start;

  RunResult result;
  std::vector<absl::Duration> e2e, overhead;
  std::vector<double> overhead_fraction;
  std::vector<std::vector<absl::Duration>> per_step;
  for (const Sample& s : samples) {
    if (!s.ok) {
      ++result.failures;
      if (result.failure_samples.size() < 3) result.failure_samples.push_back(s.failure);
      continue;
    }
    e2e.push_back(s.e2e);
    absl::Duration in_workers;
    for (size_t i = 0; i < s.steps.size(); ++i) {
      if (per_step.size() <= i) per_step.resize(i + 1);
      per_step[i].push_back(s.steps[i]);
      in_workers += s.steps[i];
    }
    overhead.push_back(s.e2e - in_workers);
    overhead_fraction.push_back(absl::FDivDuration(s.e2e - in_workers, s.e2e));
  }
  std::sort(e2e.begin(), e2e.end());
  result.throughput = static_cast<double>(e2e.size()) / absl::ToDoubleSeconds(wall);
  result.p50 = Percentile(e2e, 50);
  result.p90 = Percentile(e2e, 90);
  result.p99 = Percentile(e2e, 99);
  result.max = e2e.empty() ? absl::ZeroDuration() : e2e.back();
  for (auto& step : per_step) result.stage_median.push_back(Median(step));
  result.overhead_median = Median(overhead);
  result.overhead_percent = 100.0 * Median(overhead_fraction);
  return result;
}

std::string Ms(absl::Duration d) { return absl::StrFormat("%.2f", absl::ToDoubleMilliseconds(d)); }

// name -> pid, from dev-up's pids file ("name pid port" lines) and --pid.
std::map<std::string, int> Processes(const Options& options) {
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

// VmHWM (peak resident set) in KiB, or -1.
int64_t PeakRssKib(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmHWM:")) {
      int64_t kib = -1;
      absl::string_view rest = absl::StripAsciiWhitespace(absl::StripPrefix(line, "VmHWM:"));
      rest = absl::StripSuffix(rest, " kB");
      return absl::SimpleAtoi(rest, &kib) ? kib : -1;
    }
  }
  return -1;
}

// utime + stime of a process, from /proc/<pid>/stat; -1 if unreadable.
double CpuSeconds(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the parenthesised command name (which may hold spaces).
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  int64_t utime = 0, stime = 0;
  // Fields 14 and 15 of stat(5); index 0 here is field 3.
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string Machine() {
  std::string cpu = "unknown CPU";
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "model name")) {
      cpu = std::string(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
      break;
    }
  }
  utsname u{};
  uname(&u);
  return absl::StrCat(cpu, ", ", std::thread::hardware_concurrency(), " CPUs, Linux ", u.release);
}

int Main(int argc, char** argv) {
  CLI::App app{"conveyor-bench: load-test a running Conveyor stack"};
  Options options;
  app.add_option("--server", options.server, "Orchestrator address")
      ->envname("CONVEYOR_SERVER")
      ->capture_default_str();
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

  auto channel = grpc::CreateChannel(options.server, grpc::InsecureChannelCredentials());
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
