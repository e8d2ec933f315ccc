// Full decode (stages/common/image_codec.h) of hostile bytes under small
// limits, as resize and filter run it: CheckDeclaredSize, then DecodeImage.
// Must never crash, and never produce (or allocate for) more pixels than the
// limit let through. tools/fuzz.sh runs it with -malloc_limit_mb and
// -rss_limit_mb sized for kMaxPixels, so a decoder that allocates for a
// larger image than the header check saw is reported as an out-of-memory
// finding even before it returns; -timeout bounds the CPU of one decode
// (issue 10's progressive scan bomb), as does the decoder's own scan limit.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <opencv2/core.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "stages/common/image_codec.h"
#include "common/image_header.h"

namespace {

// 4 MP: 12 MB of BGR output; tools/fuzz.sh's -malloc_limit_mb=64 leaves room
// for a 16-bit RGBA PNG row buffer of that size, and no more.
constexpr int64_t kMaxPixels = 4'000'000;
constexpr int kMaxScans = 64;

[[noreturn]] void Finding(const char* what, const conveyor::ImageHeader& header,
                          const cv::Mat& image) {
  std::fprintf(stderr, "image_decode_fuzz: %s: header %s %dx%d, decoded %dx%d type %d\n", what,
               conveyor::MediaTypeOf(header.kind).data(), header.width, header.height,
               image.cols, image.rows, image.type());
  std::abort();
}

void DecodeAndCheck(absl::string_view bytes, const conveyor::ImageHeader& header, int reduce) {
  conveyor::DecodeLimits limits;
  limits.max_pixels = kMaxPixels;
  limits.max_scans = kMaxScans;
  absl::StatusOr<cv::Mat> image = conveyor::DecodeImage(bytes, header, limits, reduce);
  if (!image.ok()) return;
  const int64_t pixels = int64_t{image->cols} * image->rows;
  if (pixels > kMaxPixels) Finding("decoded more pixels than the limit", header, *image);
  // EXIF orientation may swap the sides, never change the area (before
  // reduction, which only shrinks it).
  if (pixels > int64_t{header.width} * header.height) {
    Finding("decoded more pixels than the header declared", header, *image);
  }
  if (image->empty() || image->type() != CV_8UC3) {
    Finding("decoded image is not 8-bit BGR", header, *image);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<conveyor::ImageHeader> header = conveyor::CheckDeclaredSize(bytes, kMaxPixels);
  if (!header.ok()) return 0;
  DecodeAndCheck(bytes, *header, 1);
  // Shrink-on-load (resize --fast) takes another path through libjpeg; the
  // last byte picks it, so the corpus keeps both.
  if (header->kind == conveyor::ImageKind::kJpeg && size > 0 && (data[size - 1] & 1) != 0) {
    DecodeAndCheck(bytes, *header, 8);
  }
  return 0;
}
