// Parsers of the flags that describe the image steps: --resize, --fit,
// --format and --filter. Pure (tests/client/image_flags_test.cc); errors as
// in flag_values.h, naming the flag and quoting the value.
#ifndef CONVEYOR_CLIENT_IMAGE_FLAGS_H_
#define CONVEYOR_CLIENT_IMAGE_FLAGS_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "conveyor/v1/stages.pb.h"

namespace conveyor::client {

// "800x600" / "800x" / "x600" -> ResizeSpec width/height, each side
// 1..kMaxImageSide (common/step_specs.h).
absl::StatusOr<conveyor::v1::ResizeSpec> ParseResizeGeometry(absl::string_view text);

// "contain" | "cover" | "fill" | "inside" (any case).
absl::StatusOr<conveyor::v1::ResizeSpec::Fit> ParseFit(absl::string_view text);

// "jpeg" (or "jpg") | "png" | "webp" (any case).
absl::StatusOr<conveyor::v1::ImageFormat> ParseFormat(absl::string_view text);

// "grayscale", "blur:sigma=2", "sharpen:amount=1,sigma=1", "sepia",
// "brightness:brightness=10,contrast=1.2", "invert", "edges:low=100,high=200".
absl::StatusOr<conveyor::v1::FilterOp> ParseFilterOp(absl::string_view text);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_IMAGE_FLAGS_H_
