// Identifies an encoded image by its magic number and reads its declared
// dimensions from the header, without decoding pixels and without OpenCV.
//
// Download uses it to refuse non-image bytes whatever the Content-Type says;
// resize and filter use the declared size to refuse decompression bombs before
// a full decode.
#ifndef CONVEYOR_COMMON_IMAGE_HEADER_H_
#define CONVEYOR_COMMON_IMAGE_HEADER_H_

#include <cstdint>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace conveyor {

enum class ImageKind { kJpeg, kPng, kWebp };

struct ImageHeader {
  ImageKind kind;
  int32_t width = 0;
  int32_t height = 0;
};

// "image/jpeg", "image/png" or "image/webp".
absl::string_view MediaTypeOf(ImageKind kind);
// "jpg", "png" or "webp".
absl::string_view ExtensionOf(ImageKind kind);

// INVALID_ARGUMENT "not an image ..." if the bytes start with no known magic
// number; INVALID_ARGUMENT if the header is truncated or declares a zero size.
absl::StatusOr<ImageHeader> ParseImageHeader(absl::string_view bytes);

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_IMAGE_HEADER_H_
