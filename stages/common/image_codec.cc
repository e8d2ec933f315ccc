#include "stages/common/image_codec.h"

#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "absl/strings/str_cat.h"
#include "stages/common/status_details.h"

namespace conveyor {
namespace {

// libwebp's WEBP_MAX_DIMENSION.
constexpr int kMaxWebpSide = 16383;

int ReducedReadFlag(int reduce) {
  switch (reduce) {
    case 2: return cv::IMREAD_REDUCED_COLOR_2;
    case 4: return cv::IMREAD_REDUCED_COLOR_4;
    case 8: return cv::IMREAD_REDUCED_COLOR_8;
    default: return cv::IMREAD_COLOR;
  }
}

}  // namespace

absl::StatusOr<ImageHeader> CheckDeclaredSize(absl::string_view bytes, int64_t max_pixels,
                                              absl::string_view field) {
  absl::StatusOr<ImageHeader> header = ParseImageHeader(bytes);
  if (!header.ok()) {
    return WithErrorReason(InvalidField(field, header.status().message()), kReasonNotAnImage);
  }
  const int64_t pixels = int64_t{header->width} * header->height;
  if (pixels > max_pixels) {
    return WithErrorReason(
        InvalidField(field, absl::StrCat("image declares ", header->width, "x", header->height,
                                         " = ", pixels, " pixels, above this worker's limit of ",
                                         max_pixels, " (--max-pixels)")),
        kReasonImageTooLarge);
  }
  return header;
}

absl::StatusOr<cv::Mat> DecodeImage(absl::string_view bytes, const ImageHeader& header,
                                    int reduce, absl::string_view field) {
  if (reduce != 1 && (header.kind != ImageKind::kJpeg ||
                      (reduce != 2 && reduce != 4 && reduce != 8))) {
    return absl::InternalError(absl::StrCat("decode reduce factor ", reduce, " for ",
                                            MediaTypeOf(header.kind)));
  }
  // imdecode only reads the buffer; wrapping it avoids copying the input.
  const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1,
                       const_cast<char*>(bytes.data()));
  cv::Mat image;
  try {
    image = cv::imdecode(buffer, ReducedReadFlag(reduce));
  } catch (const cv::Exception& e) {
    return WithErrorReason(
        InvalidField(field, absl::StrCat("cannot decode ", MediaTypeOf(header.kind), ": ",
                                         e.err)),
        kReasonNotAnImage);
  }
  if (image.empty()) {
    return WithErrorReason(
        InvalidField(field, absl::StrCat("cannot decode the ", MediaTypeOf(header.kind),
                                         " data (corrupt or truncated)")),
        kReasonNotAnImage);
  }
  return image;
}

absl::StatusOr<Encoding> ResolveEncoding(const v1::EncodeOptions& options, ImageKind input,
                                         absl::string_view field_prefix) {
  Encoding encoding;
  switch (options.format()) {
    case v1::IMAGE_FORMAT_UNSPECIFIED: encoding.kind = input; break;
    case v1::IMAGE_FORMAT_JPEG: encoding.kind = ImageKind::kJpeg; break;
    case v1::IMAGE_FORMAT_PNG: encoding.kind = ImageKind::kPng; break;
    case v1::IMAGE_FORMAT_WEBP: encoding.kind = ImageKind::kWebp; break;
    default:
      return InvalidField(absl::StrCat(field_prefix, ".format"),
                          absl::StrCat("want JPEG, PNG or WebP, got ", options.format()));
  }
  if (options.quality() < 0 || options.quality() > 100) {
    return InvalidField(absl::StrCat(field_prefix, ".quality"),
                        absl::StrCat("want 1..100 (0 = default ", kDefaultQuality, "), got ",
                                     options.quality()));
  }
  encoding.quality = options.quality() == 0 ? kDefaultQuality : options.quality();
  return encoding;
}

absl::StatusOr<std::string> EncodeImage(const cv::Mat& image, const Encoding& encoding) {
  if (image.empty()) return absl::InternalError("encoding an empty image");
  std::string extension;
  std::vector<int> params;
  switch (encoding.kind) {
    case ImageKind::kJpeg:
      extension = ".jpg";
      params = {cv::IMWRITE_JPEG_QUALITY, encoding.quality};
      break;
    case ImageKind::kPng:
      extension = ".png";
      // zlib level 3: close to the size of level 6 at a fraction of its time.
      params = {cv::IMWRITE_PNG_COMPRESSION, 3};
      break;
    case ImageKind::kWebp:
      if (image.cols > kMaxWebpSide || image.rows > kMaxWebpSide) {
        return absl::InvalidArgumentError(
            absl::StrCat("WebP cannot store ", image.cols, "x", image.rows, " pixels (max side ",
                         kMaxWebpSide, ")"));
      }
      extension = ".webp";
      params = {cv::IMWRITE_WEBP_QUALITY, encoding.quality};
      break;
  }
  std::vector<uchar> bytes;
  try {
    if (!cv::imencode(extension, image, bytes, params)) {
      return absl::InternalError(absl::StrCat("OpenCV could not encode ", extension));
    }
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("OpenCV could not encode ", extension, ": ", e.err));
  }
  return std::string(bytes.begin(), bytes.end());
}

absl::Status EncodeInto(const cv::Mat& image, const Encoding& encoding, v1::Image& out) {
  absl::StatusOr<std::string> bytes = EncodeImage(image, encoding);
  if (!bytes.ok()) return bytes.status();
  out.set_data(std::move(*bytes));
  out.set_media_type(std::string(MediaTypeOf(encoding.kind)));
  out.set_width(image.cols);
  out.set_height(image.rows);
  return absl::OkStatus();
}

}  // namespace conveyor
