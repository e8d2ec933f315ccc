// WebP decode and encode with libwebp (image_codec.h).
#include <webp/decode.h>
#include <webp/encode.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "stages/common/image_codec_internal.h"

namespace conveyor::codec_internal {
namespace {

// Input bytes handed to libwebp's incremental decoder between two checks of
// the call's cancellation and deadline.
constexpr size_t kWebpBytesPerCheck = 64 << 10;

DecodeStop DecodeWebpInto(absl::string_view bytes, const ImageHeader& header,
                          const DecodeLimits& limits, DecodeReport& report, cv::Mat& image) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, bytes.size(), &features) != VP8_STATUS_OK || features.width <= 0 ||
      features.height <= 0) {
    return DecodeStop::kCorrupt;
  }
  if (DecodeStop stop = CheckDecoderSize(features.width, features.height, header, limits, report);
      stop != DecodeStop::kNone) {
    return stop;
  }
  image.create(features.height, features.width, CV_8UC3);
  // BGR without alpha equals OpenCV's BGRA decode with alpha dropped. The
  // incremental decoder writes the same pixels as WebPDecodeBGRInto, and lets
  // a cancelled call stop between input chunks.
  struct IdecDeleter {
    void operator()(WebPIDecoder* decoder) const { WebPIDelete(decoder); }
  };
  std::unique_ptr<WebPIDecoder, IdecDeleter> decoder(WebPINewRGB(
      MODE_BGR, image.data, image.total() * image.elemSize(), static_cast<int>(image.step)));
  if (decoder == nullptr) return DecodeStop::kCorrupt;
  size_t fed = 0;
  for (;;) {
    if (DecodeStop stop = CheckCallState(limits); stop != DecodeStop::kNone) return stop;
    fed = std::min(bytes.size(), fed + kWebpBytesPerCheck);
    const VP8StatusCode code = WebPIUpdate(decoder.get(), data, fed);
    if (code == VP8_STATUS_OK) break;
    if (code != VP8_STATUS_SUSPENDED || fed == bytes.size()) return DecodeStop::kCorrupt;
  }
  int last_row = 0;
  if (WebPIDecGetRGB(decoder.get(), &last_row, nullptr, nullptr, nullptr) == nullptr ||
      last_row != features.height) {
    return DecodeStop::kCorrupt;
  }
  return DecodeStop::kNone;
}

}  // namespace

bool DecodeWebp(absl::string_view bytes, const ImageHeader& header, const DecodeLimits& limits,
                DecodeReport& report, cv::Mat& out) {
  report.stop = DecodeWebpInto(bytes, header, limits, report, out);
  return report.stop == DecodeStop::kNone;
}

bool EncodeWebp(const cv::Mat& image, int quality, std::string& out) {
  // imencode(".webp", {IMWRITE_WEBP_QUALITY, q}) with q <= 100 is lossy.
  cv::Mat bgr = image;
  if (image.channels() == 1) cv::merge(std::vector<cv::Mat>{image, image, image}, bgr);
  uint8_t* encoded = nullptr;
  const size_t size =
      WebPEncodeBGR(bgr.ptr<uint8_t>(), bgr.cols, bgr.rows, static_cast<int>(bgr.step),
                    static_cast<float>(quality), &encoded);
  if (size > 0) out.append(reinterpret_cast<const char*>(encoded), size);
  WebPFree(encoded);
  return size > 0;
}

}  // namespace conveyor::codec_internal
