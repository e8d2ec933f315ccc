// Memory and CPU of a real image worker process.
//
//   conveyor-image-rss --worker <build>/bin/conveyor-resize [--stage resize]
//                      [--photo PATH] [--idle-seconds 10] [--calls 3]
//
// Starts the worker on 127.0.0.1:0 (the test fixture's ServerProcess), waits
// until it serves, then reports from /proc/<pid>/status and /proc/<pid>/stat:
//   idle: VmRSS and VmHWM after start-up, and CPU % over --idle-seconds;
//   then, for each shrink-on-load mode (quality, fast, off) in turn, --calls
//   calls resizing a 24 MP JPEG (the photo resized to 6532x3674 with
//   INTER_CUBIC, JPEG q92) to 800 px wide, q85 (filter: grayscale on it),
//   and VmHWM after them (the peak so far, so the modes are reported in
//   ascending memory order: quality, fast, off).
// Stops the worker with SIGTERM and checks it exits 0.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "tests/testing/process_fixture.h"

namespace {

struct Flags {
  std::string worker;
  std::string stage = "resize";
  std::string photo = "/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg";
  int idle_seconds = 10;
  int calls = 3;
};

// A field of /proc/<pid>/status in kB, e.g. "VmRSS".
long StatusKb(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

// utime + stime of /proc/<pid>/stat, in clock ticks.
long CpuTicks(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the ")" that ends the command name: state is field 3,
  // utime 14, stime 15.
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::vector<std::string> fields;
  std::string f;
  while (rest >> f) fields.push_back(f);
  if (fields.size() < 13) return -1;
  return std::stol(fields[11]) + std::stol(fields[12]);
}

double Mb(long kb) { return kb / 1024.0; }

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--worker") flags.worker = value();
    else if (arg == "--stage") flags.stage = value();
    else if (arg == "--photo") flags.photo = value();
    else if (arg == "--idle-seconds") flags.idle_seconds = std::stoi(value());
    else if (arg == "--calls") flags.calls = std::stoi(value());
    else {
      std::fprintf(stderr,
                   "usage: %s --worker BIN [--stage resize|filter] [--photo PATH] "
                   "[--idle-seconds N] [--calls N]\n",
                   argv[0]);
      return 2;
    }
  }
  if (flags.worker.empty() || (flags.stage != "resize" && flags.stage != "filter")) {
    std::fprintf(stderr, "--worker BIN is required; --stage is resize or filter\n");
    return 2;
  }

  cv::Mat photo = cv::imread(flags.photo, cv::IMREAD_COLOR);
  if (photo.empty()) {
    std::fprintf(stderr, "cannot read %s\n", flags.photo.c_str());
    return 2;
  }
  cv::Mat big;
  cv::resize(photo, big, cv::Size(6532, 3674), 0, 0, cv::INTER_CUBIC);
  std::vector<uchar> encoded;
  cv::imencode(".jpg", big, encoded, {cv::IMWRITE_JPEG_QUALITY, 92});
  photo.release();
  big.release();
  const std::string jpeg(encoded.begin(), encoded.end());

  // The worker binds port 0 and says which port it got (--port-file).
  conveyor::testing::ServerProcess worker({flags.worker}, "/dev/null");
  const absl::Status serving =
      worker.started().ok() ? worker.WaitUntilServing(absl::Seconds(20)) : worker.started();
  if (!serving.ok()) {
    std::fprintf(stderr, "worker not serving: %s\n", serving.ToString().c_str());
    return 1;
  }
  const pid_t pid = worker.process().pid();
  const std::string address = worker.address();
  std::printf("worker %s pid %d on %s\n", flags.worker.c_str(), pid, address.c_str());

  // Let start-up settle, then measure idle.
  absl::SleepFor(absl::Seconds(1));
  const long idle_rss = StatusKb(pid, "VmRSS");
  const long idle_hwm = StatusKb(pid, "VmHWM");
  const long ticks_before = CpuTicks(pid);
  absl::SleepFor(absl::Seconds(flags.idle_seconds));
  const long ticks_after = CpuTicks(pid);
  const double idle_cpu_pct = 100.0 * (ticks_after - ticks_before) / sysconf(_SC_CLK_TCK) /
                              flags.idle_seconds;
  std::printf(
      "idle: VmRSS %.1f MB (RssAnon %.1f MB, RssFile %.1f MB), VmHWM %.1f MB, CPU %.2f %% "
      "over %d s\n",
      Mb(idle_rss), Mb(StatusKb(pid, "RssAnon")), Mb(StatusKb(pid, "RssFile")), Mb(idle_hwm),
      idle_cpu_pct, flags.idle_seconds);

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  int failures = 0;
  if (flags.stage == "resize") {
    auto stub = conveyor::v1::ResizeStage::NewStub(channel);
    const std::vector<std::pair<const char*, conveyor::v1::ResizeSpec::ShrinkOnLoad>> modes = {
        {"quality", conveyor::v1::ResizeSpec::QUALITY},
        {"fast", conveyor::v1::ResizeSpec::FAST},
        {"off", conveyor::v1::ResizeSpec::OFF}};
    for (const auto& [name, mode] : modes) {
      conveyor::v1::ResizeRequest request;
      request.mutable_image()->set_data(jpeg);
      request.mutable_spec()->set_width(800);
      request.mutable_spec()->set_shrink_on_load(mode);
      request.mutable_spec()->mutable_output()->set_quality(85);
      double ms_total = 0;
      for (int i = 0; i < flags.calls; ++i) {
        grpc::ClientContext ctx;
        conveyor::v1::ResizeResponse response;
        absl::Time start = absl::Now();
        grpc::Status status = stub->Resize(&ctx, request, &response);
        ms_total += absl::ToDoubleMilliseconds(absl::Now() - start);
        if (!status.ok()) {
          std::fprintf(stderr, "resize failed: %s\n", status.error_message().c_str());
          ++failures;
        }
      }
      const long hwm = StatusKb(pid, "VmHWM");
      std::printf(
          "24 MP resize (%d x %s, %.1f MB JPEG in): VmHWM %.1f MB = %.1f MB above idle RSS; "
          "VmRSS after %.1f MB (RssAnon %.1f MB, RssFile %.1f MB); mean round trip %.1f ms\n",
          flags.calls, name, jpeg.size() / 1048576.0, Mb(hwm), Mb(hwm - idle_rss),
          Mb(StatusKb(pid, "VmRSS")), Mb(StatusKb(pid, "RssAnon")), Mb(StatusKb(pid, "RssFile")),
          ms_total / flags.calls);
    }
  } else {
    auto stub = conveyor::v1::FilterStage::NewStub(channel);
    conveyor::v1::FilterRequest request;
    request.mutable_image()->set_data(jpeg);
    request.mutable_spec()->add_ops()->mutable_grayscale();
    for (int i = 0; i < flags.calls; ++i) {
      grpc::ClientContext ctx;
      conveyor::v1::FilterResponse response;
      grpc::Status status = stub->Filter(&ctx, request, &response);
      if (!status.ok()) {
        std::fprintf(stderr, "filter failed: %s\n", status.error_message().c_str());
        ++failures;
      }
    }
    const long hwm = StatusKb(pid, "VmHWM");
    std::printf("24 MP filter (%d x grayscale): VmHWM %.1f MB = %.1f MB above idle RSS\n",
                flags.calls, Mb(hwm), Mb(hwm - idle_rss));
  }

  worker.process().Signal(SIGTERM);
  const int code = worker.process().Wait(absl::Seconds(60));  // -1: did not exit
  std::printf("worker exit code after SIGTERM: %d\n", code);
  return failures == 0 && code == 0 ? 0 : 1;
}
