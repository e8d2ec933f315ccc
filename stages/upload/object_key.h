// Object keys: the name an uploaded image gets below its destination.
//
// A key comes from UploadSpec.key_template, whose placeholders depend only on
// the chain, the step and the image, never on the attempt: a retried upload
// therefore writes the same key and overwrites the object instead of making a
// second one. Pure functions, no I/O.
#ifndef CONVEYOR_STAGES_UPLOAD_OBJECT_KEY_H_
#define CONVEYOR_STAGES_UPLOAD_OBJECT_KEY_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "conveyor/v1/stages.pb.h"

namespace conveyor::stages::upload {

// Used when UploadSpec.key_template is empty.
inline constexpr absl::string_view kDefaultKeyTemplate = "{chain_id}-{step}.{ext}";

// Longest key accepted, in bytes (S3's limit).
inline constexpr size_t kMaxKeyBytes = 1024;

// The values a template's placeholders expand to.
struct KeyFields {
  std::string chain_id;  // {chain_id}
  int32_t step = 0;      // {step}: StepContext.step_index
  std::string ext;       // {ext}: "jpg", "png" or "webp"
  int32_t width = 0;     // {width}, from the image header
  int32_t height = 0;    // {height}, from the image header
};

// The {chain_id} of a call. "chains/<id>" gives "<id>". A direct call (empty
// context.chain) gives "direct-<first 16 hex digits of the image's SHA-256>",
// so repeating a direct upload of the same bytes overwrites one object while
// different images do not collide. INVALID_ARGUMENT naming context.chain if it
// is set but not "chains/<id>" with a non-empty id free of '/' and control
// characters.
absl::StatusOr<std::string> ChainIdOf(const conveyor::v1::StepContext& context,
                                      absl::string_view image_sha256_hex);

// Expands `key_template` (empty means kDefaultKeyTemplate) and validates the
// result with ValidateObjectKey. INVALID_ARGUMENT naming spec.key_template for
// an unknown placeholder, an unbalanced '{' or '}', or a bad resulting key.
// There is no escape for literal braces: keys never need them.
absl::StatusOr<std::string> ExpandKeyTemplate(absl::string_view key_template,
                                              const KeyFields& fields);

// A key may contain '/' to make sub-directories, but must be 1..kMaxKeyBytes
// bytes, must not start or end with '/', and must have no empty, "." or ".."
// segment and no control character (NUL included). INVALID_ARGUMENT naming
// `field` otherwise.
absl::Status ValidateObjectKey(absl::string_view key, absl::string_view field);

}  // namespace conveyor::stages::upload

#endif  // CONVEYOR_STAGES_UPLOAD_OBJECT_KEY_H_
