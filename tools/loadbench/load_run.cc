#include "tools/loadbench/load_run.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/format.h"
#include "common/proto_time.h"

namespace conveyor::tools {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;
using conveyor::v1::Orchestrator;
using conveyor::v1::SubmitChainRequest;

absl::StatusOr<std::string> ScenarioImage(const LoadOptions& options) {
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

SubmitChainRequest ScenarioRequest(const LoadOptions& options, const std::string& image,
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

Sample RunChain(Orchestrator::Stub& stub, const SubmitChainRequest& request,
                const std::string& token) {
  const auto authorize = [&token](grpc::ClientContext& context) {
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  };
  Sample sample;
  const absl::Time start = absl::Now();
  Chain chain;
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(start + absl::Seconds(30)));
    authorize(context);
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
    authorize(context);
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
  authorize(context);
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

absl::Duration Percentile(const std::vector<absl::Duration>& sorted, double p) {
  if (sorted.empty()) return absl::ZeroDuration();
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * sorted.size()));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

RunResult RunOnce(Orchestrator::Stub& stub, const SubmitChainRequest& request,
                  const LoadOptions& options) {
  // Warm-up: connections, caches, the coordinator's first dispatches.
  for (int i = 0; i < options.warmup; ++i) RunChain(stub, request, options.token);

  std::vector<Sample> samples(options.chains);
  std::atomic<int> next{0};
  const absl::Time start = absl::Now();
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < std::min(options.concurrency, options.chains); ++t) {
      threads.emplace_back([&] {
        for (int i = next++; i < options.chains; i = next++)
          samples[i] = RunChain(stub, request, options.token);
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

}  // namespace conveyor::tools
