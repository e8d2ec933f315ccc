#include "stages/common/image_codec.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_details.h"
#include "stages/common/image_codec_internal.h"

namespace conveyor {
namespace codec_internal {
namespace {

// OpenCV's CV_IO_MAX_IMAGE_WIDTH/HEIGHT and CV_IO_MAX_IMAGE_PIXELS: imdecode
// refused larger images, so we still do, whatever --max-pixels allows.
constexpr int64_t kMaxDecodeSide = int64_t{1} << 20;
constexpr int64_t kMaxDecodePixels = int64_t{1} << 30;

}  // namespace

// The decoder's own view of the size, checked before a pixel is allocated:
// the header parser and the codec must agree, and the codec's size must be
// inside the limits whatever the header said.
DecodeStop CheckDecoderSize(int64_t width, int64_t height, const ImageHeader& header,
                            const DecodeLimits& limits, DecodeReport& report) {
  report.width = width;
  report.height = height;
  if (width > limits.max_side || height > limits.max_side || width > kMaxDecodeSide ||
      height > kMaxDecodeSide || width * height > limits.max_pixels ||
      width * height > kMaxDecodePixels) {
    return DecodeStop::kTooLarge;
  }
  if (width != header.width || height != header.height) return DecodeStop::kMismatch;
  return DecodeStop::kNone;
}

// Polled between units of decode work (JPEG iMCU rows and scans, PNG rows,
// WebP input chunks).
DecodeStop CheckCallState(const DecodeLimits& limits) {
  if (limits.deadline != absl::InfiniteFuture() && absl::Now() >= limits.deadline) {
    return DecodeStop::kDeadline;
  }
  if (limits.cancelled && limits.cancelled()) return DecodeStop::kCancelled;
  return DecodeStop::kNone;
}

int ExifOrientation(const uint8_t* tiff, size_t size) {
  const bool little_endian = size >= 2 && tiff[0] == 'I' && tiff[1] == 'I';
  auto u16 = [&](size_t offset, uint32_t& out) {
    if (offset + 1 >= size) return false;
    out = little_endian ? tiff[offset] | tiff[offset + 1] << 8
                        : tiff[offset] << 8 | tiff[offset + 1];
    return true;
  };
  uint32_t magic = 0;
  uint32_t hi = 0;
  uint32_t lo = 0;
  if (!u16(2, magic) || magic != 0x2A) return 1;
  if (size < 8) return 1;
  if (!u16(little_endian ? 6 : 4, hi) || !u16(little_endian ? 4 : 6, lo)) return 1;
  size_t offset = size_t{hi} << 16 | lo;
  uint32_t entries = 0;
  if (!u16(offset, entries)) return 1;
  offset += 2;
  constexpr uint32_t kOrientationTag = 0x0112;
  constexpr size_t kEntryBytes = 12;
  for (uint32_t i = 0; i < entries; ++i, offset += kEntryBytes) {
    uint32_t tag = 0;
    if (!u16(offset, tag)) return 1;
    if (tag != kOrientationTag) continue;
    uint32_t value = 0;
    if (!u16(offset + 8, value)) return 1;
    return static_cast<int>(value);
  }
  return 1;
}

}  // namespace codec_internal

namespace {

using codec_internal::DecodeReport;
using codec_internal::DecodeStop;

// libwebp's WEBP_MAX_DIMENSION.
constexpr int kMaxWebpSide = 16383;

absl::string_view LibraryOf(ImageKind kind) {
  switch (kind) {
    case ImageKind::kJpeg: return "libjpeg";
    case ImageKind::kPng: return "libpng";
    case ImageKind::kWebp: return "libwebp";
  }
  return "codec";
}

// Turns `image` upright as OpenCV's ApplyExifOrientation does (TIFF values
// 1..8; anything else leaves the image as stored).
void ApplyOrientation(int orientation, cv::Mat& image) {
  switch (orientation) {
    case 2: cv::flip(image, image, 1); break;
    case 3: cv::rotate(image, image, cv::ROTATE_180); break;
    case 4: cv::flip(image, image, 0); break;
    case 5: cv::transpose(image, image); break;
    case 6: cv::rotate(image, image, cv::ROTATE_90_CLOCKWISE); break;
    case 7:
      cv::transpose(image, image);
      cv::flip(image, image, -1);
      break;
    case 8: cv::rotate(image, image, cv::ROTATE_90_COUNTERCLOCKWISE); break;
    default: break;
  }
}

absl::Status CannotDecode(absl::string_view field, ImageKind kind) {
  return WithErrorReason(
      InvalidField(field, absl::StrCat("cannot decode the ", MediaTypeOf(kind),
                                       " data (corrupt or truncated)")),
      kReasonNotAnImage);
}

// The status of a decode that `report` says was stopped.
absl::Status StoppedDecode(const DecodeReport& report, const ImageHeader& header,
                           const DecodeLimits& limits, absl::string_view field) {
  const absl::string_view media_type = MediaTypeOf(header.kind);
  switch (report.stop) {
    case DecodeStop::kNone:
    case DecodeStop::kCorrupt:
      return CannotDecode(field, header.kind);
    case DecodeStop::kTooLarge:
      return WithErrorReason(
          InvalidField(field, absl::StrCat("the ", media_type, " decoder reads ", report.width,
                                           "x", report.height, " pixels, above this worker's "
                                           "limit of ", limits.max_pixels, " pixels and ",
                                           limits.max_side, " px per side")),
          kReasonImageTooLarge);
    case DecodeStop::kMismatch:
      return WithErrorReason(
          InvalidField(field, absl::StrCat("the ", media_type, " header reads ", header.width,
                                           "x", header.height, " but the decoder reads ",
                                           report.width, "x", report.height,
                                           "; refusing an ambiguous file")),
          kReasonHeaderMismatch);
    case DecodeStop::kTooManyScans:
      return WithErrorReason(
          InvalidField(field, absl::StrCat("progressive JPEG has more than ", limits.max_scans,
                                           " scans (--max-scans); refusing to decode it")),
          kReasonTooManyScans, {{"max_scans", absl::StrCat(limits.max_scans)}});
    case DecodeStop::kCancelled:
      return absl::CancelledError(absl::StrCat("cancelled while decoding the ", media_type));
    case DecodeStop::kDeadline:
      return absl::DeadlineExceededError(
          absl::StrCat("deadline passed while decoding the ", media_type));
  }
  return CannotDecode(field, header.kind);
}

// Decodes without orientation; `orientation` gets the EXIF value (1 if none).
absl::StatusOr<cv::Mat> DecodeUnoriented(absl::string_view bytes, const ImageHeader& header,
                                         int reduce, absl::string_view field,
                                         const DecodeLimits& limits, int& orientation) {
  cv::Mat image;
  DecodeReport report;
  bool decoded = false;
  switch (header.kind) {
    case ImageKind::kJpeg:
      decoded = codec_internal::DecodeJpeg(bytes, header, reduce, limits, report, orientation,
                                           image);
      break;
    case ImageKind::kPng:
      decoded = codec_internal::DecodePng(bytes, header, limits, report, orientation, image);
      break;
    case ImageKind::kWebp:
      decoded = codec_internal::DecodeWebp(bytes, header, limits, report, image);
      break;
  }
  if (!decoded) return StoppedDecode(report, header, limits, field);
  return image;
}

}  // namespace

absl::StatusOr<ImageHeader> CheckDeclaredSize(absl::string_view bytes, int64_t max_pixels,
                                              absl::string_view field, int32_t max_side) {
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
  if (header->width > max_side || header->height > max_side) {
    return WithErrorReason(
        InvalidField(field, absl::StrCat("image is ", header->width, "x", header->height,
                                         "; want at most ", max_side, " px per side")),
        kReasonImageTooLarge);
  }
  return header;
}

absl::StatusOr<cv::Mat> DecodeImage(absl::string_view bytes, const ImageHeader& header,
                                    int reduce, absl::string_view field) {
  return DecodeImage(bytes, header, DecodeLimits{}, reduce, field);
}

absl::StatusOr<cv::Mat> DecodeImage(absl::string_view bytes, const ImageHeader& header,
                                    const DecodeLimits& limits, int reduce,
                                    absl::string_view field) {
  if (reduce != 1 && (header.kind != ImageKind::kJpeg ||
                      (reduce != 2 && reduce != 4 && reduce != 8))) {
    return absl::InternalError(absl::StrCat("decode reduce factor ", reduce, " for ",
                                            MediaTypeOf(header.kind)));
  }
  try {
    int orientation = 1;
    absl::StatusOr<cv::Mat> image =
        DecodeUnoriented(bytes, header, reduce, field, limits, orientation);
    if (image.ok()) ApplyOrientation(orientation, *image);
    return image;
  } catch (const cv::Exception& e) {
    return WithErrorReason(
        InvalidField(field, absl::StrCat("cannot decode ", MediaTypeOf(header.kind), ": ",
                                         e.err)),
        kReasonNotAnImage);
  }
}

absl::StatusOr<Encoding> ResolveEncoding(const v1::EncodeOptions& options, ImageKind input,
                                         absl::string_view field_prefix) {
  if (absl::Status s = CheckEncodeOptions(field_prefix, options); !s.ok()) return s;
  Encoding encoding;
  switch (options.format()) {
    case v1::IMAGE_FORMAT_JPEG: encoding.kind = ImageKind::kJpeg; break;
    case v1::IMAGE_FORMAT_PNG: encoding.kind = ImageKind::kPng; break;
    case v1::IMAGE_FORMAT_WEBP: encoding.kind = ImageKind::kWebp; break;
    default: encoding.kind = input; break;  // IMAGE_FORMAT_UNSPECIFIED
  }
  encoding.quality = options.quality() == 0 ? kDefaultQuality : options.quality();
  return encoding;
}

absl::StatusOr<std::string> EncodeImage(const cv::Mat& image, const Encoding& encoding) {
  if (image.empty()) return absl::InternalError("encoding an empty image");
  const absl::string_view extension = ExtensionOf(encoding.kind);
  if (encoding.kind == ImageKind::kWebp &&
      (image.cols > kMaxWebpSide || image.rows > kMaxWebpSide)) {
    return absl::InvalidArgumentError(absl::StrCat("WebP cannot store ", image.cols, "x",
                                                   image.rows, " pixels (max side ",
                                                   kMaxWebpSide, ")"));
  }
  if (image.channels() != 1 && image.channels() != 3) {
    return absl::InternalError(
        absl::StrCat("cannot encode .", extension, " from ", image.channels(), " channels"));
  }
  const int quality = std::clamp(encoding.quality, 1, 100);
  try {
    // As imencode did, other depths are converted (saturated) to 8 bits.
    cv::Mat pixels = image;
    if (image.depth() != CV_8U) image.convertTo(pixels, CV_8U);
    std::string bytes;
    bool encoded = false;
    switch (encoding.kind) {
      case ImageKind::kJpeg: encoded = codec_internal::EncodeJpeg(pixels, quality, bytes); break;
      case ImageKind::kPng: encoded = codec_internal::EncodePng(pixels, bytes); break;
      case ImageKind::kWebp: encoded = codec_internal::EncodeWebp(pixels, quality, bytes); break;
    }
    if (!encoded) {
      return absl::InternalError(absl::StrCat(LibraryOf(encoding.kind), " could not encode .",
                                              extension));
    }
    return bytes;
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("could not encode .", extension, ": ", e.err));
  }
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
