// Micro benchmarks of the resize and filter stages' logic, in-process (the
// time inside the worker: decode + work + encode, no gRPC).
//
//   conveyor-image-bench [--photo PATH] [--write-inputs DIR | --vips-dir DIR]
//                        [google benchmark flags]
//
// Inputs, made once at start from a real photo (default Debian's
// mate-backgrounds Elephants_5640x3172.jpg, 17.9 MP):
//   2mp, 12mp, 24mp  the photo resized with OpenCV (INTER_AREA down,
//                    INTER_CUBIC up) to 1886x1061, 4619x2598 and 6532x3674
//                    (16:9 like the source), re-encoded as JPEG q92 4:2:0;
//   storm            /usr/share/backgrounds/mate/nature/Storm.jpg as shipped
//                    (1920x1280, 2.46 MP), a camera JPEG not re-encoded here.
//
// BM_Resize/<input>/<mode>: resize to 800 px wide, JPEG q85, with
// shrink-on-load QUALITY, FAST or OFF (full decode). Counters: decode_scale
// (the N chosen) and psnr_db: PSNR of the mode's output (before JPEG
// encoding) against a full-decode INTER_AREA reference of the same size.
// BM_FilterOp/<op>: one filter op on the decoded 2 MP image (pixels only).
// BM_FilterCall/<op>: the whole filter call on the 2 MP JPEG (decode + op +
// JPEG q85 encode); BM_FilterCall/<12mp|24mp>/<op> the same on larger inputs.
//
// Times: wall ("Time", what a caller waits) and CPU of the whole process
// ("CPU", all OpenCV threads; steadier than wall time on a busy machine).
//
// For a comparison with libvips (tools/bench/vips_compare.sh):
//   --write-inputs DIR  writes the inputs as DIR/<name>.jpg and exits;
//   --vips-dir DIR      also prints the PSNR of DIR/<name>.vips.png (made by
//                       vipsthumbnail) against the same reference.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "conveyor/v1/stages.pb.h"
#include "stages/filter/filter.h"
#include "stages/resize/resize.h"

namespace conveyor::bench {
namespace {

using v1::ResizeSpec;

constexpr int kTargetWidth = 800;
constexpr int kQuality = 85;

std::string g_photo = "/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg";
std::string g_write_inputs;
std::string g_vips_dir;
const char* const kStormPhoto = "/usr/share/backgrounds/mate/nature/Storm.jpg";

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s (apt-get install mate-backgrounds)\n", path.c_str());
    std::exit(2);
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

cv::Mat DecodeFull(const std::string& bytes) {
  return cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1,
                              const_cast<char*>(bytes.data())),
                      cv::IMREAD_COLOR);
}

std::string EncodeJpeg(const cv::Mat& image, int quality) {
  std::vector<uchar> bytes;
  cv::imencode(".jpg", image, bytes, {cv::IMWRITE_JPEG_QUALITY, quality});
  return std::string(bytes.begin(), bytes.end());
}

// Encoded test inputs by name, made once.
const std::map<std::string, std::string>& Inputs() {
  static const std::map<std::string, std::string>* inputs = [] {
    auto* map = new std::map<std::string, std::string>();
    const cv::Mat photo = DecodeFull(ReadFileOrDie(g_photo));
    const std::vector<std::pair<std::string, cv::Size>> sizes = {
        {"2mp", {1886, 1061}}, {"12mp", {4619, 2598}}, {"24mp", {6532, 3674}}};
    for (const auto& [name, size] : sizes) {
      cv::Mat scaled;
      cv::resize(photo, scaled, size, 0, 0,
                 size.width < photo.cols ? cv::INTER_AREA : cv::INTER_CUBIC);
      (*map)[name] = EncodeJpeg(scaled, 92);
    }
    (*map)["storm"] = ReadFileOrDie(kStormPhoto);
    return map;
  }();
  return *inputs;
}

v1::ResizeRequest ResizeRequestFor(const std::string& input, ResizeSpec::ShrinkOnLoad mode,
                                   v1::ImageFormat format) {
  v1::ResizeRequest request;
  request.mutable_image()->set_data(Inputs().at(input));
  request.mutable_spec()->set_width(kTargetWidth);
  request.mutable_spec()->set_shrink_on_load(mode);
  request.mutable_spec()->mutable_output()->set_format(format);
  request.mutable_spec()->mutable_output()->set_quality(kQuality);
  return request;
}

// The full decode resized with INTER_AREA: what shrink-on-load is judged by.
cv::Mat Reference(const std::string& input, cv::Size size) {
  cv::Mat reference;
  cv::resize(DecodeFull(Inputs().at(input)), reference, size, 0, 0, cv::INTER_AREA);
  return reference;
}

// PSNR of `mode`'s pixels (PNG output, so no encode loss) against a full
// decode + INTER_AREA to the same size.
double ResizePsnr(const std::string& input, ResizeSpec::ShrinkOnLoad mode) {
  const stages::resize::Resizer resizer({});
  v1::ResizeResponse response;
  stages::resize::ResizeStats stats;
  if (!resizer.Resize(ResizeRequestFor(input, mode, v1::IMAGE_FORMAT_PNG), response,
                      [] { return false; }, stats)
           .ok()) {
    return NAN;
  }
  const cv::Mat out = DecodeFull(response.image().data());
  const double psnr = cv::PSNR(out, Reference(input, out.size()));
  return std::min(psnr, 99.0);  // identical images: report 99 rather than infinity
}

int WriteInputs(const std::string& dir) {
  for (const auto& [name, bytes] : Inputs()) {
    std::ofstream out(dir + "/" + name + ".jpg", std::ios::binary);
    out << bytes;
    if (!out) {
      std::fprintf(stderr, "cannot write %s/%s.jpg\n", dir.c_str(), name.c_str());
      return 1;
    }
  }
  return 0;
}

void PrintVipsPsnr(const std::string& dir) {
  for (const auto& [name, bytes] : Inputs()) {
    const cv::Mat vips = cv::imread(dir + "/" + name + ".vips.png", cv::IMREAD_COLOR);
    if (vips.empty()) continue;
    std::printf("vipsthumbnail %s: %dx%d, PSNR vs full-decode INTER_AREA %.2f dB\n",
                name.c_str(), vips.cols, vips.rows, cv::PSNR(vips, Reference(name, vips.size())));
  }
}

void BM_Resize(benchmark::State& state, std::string input, ResizeSpec::ShrinkOnLoad mode) {
  const stages::resize::Resizer resizer({});
  const v1::ResizeRequest request = ResizeRequestFor(input, mode, v1::IMAGE_FORMAT_JPEG);
  stages::resize::ResizeStats stats;
  size_t out_bytes = 0;
  for (auto _ : state) {
    v1::ResizeResponse response;
    absl::Status status = resizer.Resize(request, response, [] { return false; }, stats);
    if (!status.ok()) {
      state.SkipWithError(std::string(status.message()).c_str());
      return;
    }
    out_bytes = response.image().data().size();
    benchmark::DoNotOptimize(response);
  }
  state.counters["decode_scale"] = stats.decode_scale;
  state.counters["in_mp"] = stats.input.area() / 1e6;
  state.counters["out_kb"] = static_cast<double>(out_bytes) / 1024;
  state.counters["psnr_db"] = ResizePsnr(input, mode);
}

v1::FilterOp OpNamed(const std::string& name) {
  v1::FilterOp op;
  if (name == "grayscale") op.mutable_grayscale();
  if (name == "gaussian_blur_s2") op.mutable_gaussian_blur()->set_sigma(2);
  if (name == "sharpen_a1") op.mutable_sharpen()->set_amount(1);
  if (name == "sepia") op.mutable_sepia();
  if (name == "brightness_contrast") {
    op.mutable_brightness_contrast()->set_brightness(10);
    op.mutable_brightness_contrast()->set_contrast(1.2);
  }
  if (name == "invert") op.mutable_invert();
  if (name == "edge_detect") op.mutable_edge_detect();
  return op;
}

void BM_FilterOp(benchmark::State& state, std::string op_name) {
  const cv::Mat source = DecodeFull(Inputs().at("2mp"));
  const v1::FilterOp op = OpNamed(op_name);
  cv::Mat image;
  for (auto _ : state) {
    state.PauseTiming();
    source.copyTo(image);  // ops work in place
    state.ResumeTiming();
    absl::Status status = stages::filter::ApplyFilterOp(op, image);
    if (!status.ok()) {
      state.SkipWithError(std::string(status.message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(image.data);
  }
  state.counters["mp"] = source.total() / 1e6;
}

void BM_FilterCall(benchmark::State& state, std::string input, std::string op_name) {
  const stages::filter::Filterer filterer({});
  v1::FilterRequest request;
  request.mutable_image()->set_data(Inputs().at(input));
  *request.mutable_spec()->add_ops() = OpNamed(op_name);
  request.mutable_spec()->mutable_output()->set_quality(kQuality);
  stages::filter::FilterStats stats;
  for (auto _ : state) {
    v1::FilterResponse response;
    absl::Status status = filterer.Filter(request, response, [] { return false; }, stats);
    if (!status.ok()) {
      state.SkipWithError(std::string(status.message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(response);
  }
}

// Full decode alone, for reference: what shrink-on-load avoids.
void BM_DecodeOnly(benchmark::State& state, std::string input, int reduce) {
  const std::string& bytes = Inputs().at(input);
  const int flag = reduce == 1   ? cv::IMREAD_COLOR
                   : reduce == 2 ? cv::IMREAD_REDUCED_COLOR_2
                   : reduce == 4 ? cv::IMREAD_REDUCED_COLOR_4
                                 : cv::IMREAD_REDUCED_COLOR_8;
  for (auto _ : state) {
    cv::Mat image = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1,
                                         const_cast<char*>(bytes.data())),
                                 flag);
    benchmark::DoNotOptimize(image.data);
  }
}

void RegisterAll() {
  const std::vector<std::pair<std::string, ResizeSpec::ShrinkOnLoad>> modes = {
      {"quality", ResizeSpec::QUALITY}, {"fast", ResizeSpec::FAST}, {"off", ResizeSpec::OFF}};
  for (const std::string input : {"2mp", "12mp", "24mp", "storm"}) {
    for (const auto& [mode_name, mode] : modes) {
      benchmark::RegisterBenchmark(("BM_Resize/" + input + "/" + mode_name).c_str(), BM_Resize,
                                   input, mode)
          ->Unit(benchmark::kMillisecond)
          ->MeasureProcessCPUTime()
          ->UseRealTime();
    }
  }
  for (const std::string input : {"2mp", "12mp", "24mp"}) {
    for (int reduce : {1, 2, 4}) {
      benchmark::RegisterBenchmark(
          ("BM_DecodeOnly/" + input + "/reduce" + std::to_string(reduce)).c_str(),
          BM_DecodeOnly, input, reduce)
          ->Unit(benchmark::kMillisecond)
          ->MeasureProcessCPUTime()
          ->UseRealTime();
    }
  }
  for (const std::string op : {"grayscale", "gaussian_blur_s2", "sharpen_a1", "sepia",
                               "brightness_contrast", "invert", "edge_detect"}) {
    benchmark::RegisterBenchmark(("BM_FilterOp/" + op).c_str(), BM_FilterOp, op)
        ->Unit(benchmark::kMillisecond)
        ->MeasureProcessCPUTime()
        ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_FilterCall/" + op).c_str(), BM_FilterCall, "2mp", op)
        ->Unit(benchmark::kMillisecond)
        ->MeasureProcessCPUTime()
        ->UseRealTime();
  }
  // Filter has no shrink-on-load: its cost grows with the input.
  for (const std::string input : {"12mp", "24mp"}) {
    for (const std::string op : {"grayscale", "sharpen_a1"}) {
      benchmark::RegisterBenchmark(("BM_FilterCall/" + input + "/" + op).c_str(), BM_FilterCall,
                                   input, op)
          ->Unit(benchmark::kMillisecond)
          ->MeasureProcessCPUTime()
          ->UseRealTime();
    }
  }
}

}  // namespace
}  // namespace conveyor::bench

int main(int argc, char** argv) {
  // Our own flag first; the rest belongs to Google Benchmark.
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--photo") == 0 && i + 1 < argc) {
      conveyor::bench::g_photo = argv[++i];
    } else if (std::strcmp(argv[i], "--write-inputs") == 0 && i + 1 < argc) {
      conveyor::bench::g_write_inputs = argv[++i];
    } else if (std::strcmp(argv[i], "--vips-dir") == 0 && i + 1 < argc) {
      conveyor::bench::g_vips_dir = argv[++i];
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  conveyor::bench::Inputs();  // make the inputs before any timing
  if (!conveyor::bench::g_write_inputs.empty()) {
    return conveyor::bench::WriteInputs(conveyor::bench::g_write_inputs);
  }
  if (!conveyor::bench::g_vips_dir.empty()) conveyor::bench::PrintVipsPsnr(conveyor::bench::g_vips_dir);
  conveyor::bench::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
