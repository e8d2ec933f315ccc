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
#include "common/step_specs.h"
#include "conveyor/v1/stages.pb.h"

namespace conveyor::stages::upload {

// Used when UploadSpec.key_template is empty.
inline constexpr absl::string_view kDefaultKeyTemplate = "{chain_id}-{step}.{ext}";

// Longest key accepted, in bytes (S3's limit).
inline constexpr size_t kMaxKeyBytes = 1024;

// How a store treats an object that exists already.
struct OverwritePolicy {
  // --no-overwrite: refuse to replace an object unless it holds the same
  // bytes or `origin` wrote it.
  bool no_overwrite = false;
  // Who writes: WriteOriginOf(context), recorded with the object (S3 user
  // metadata, file xattr user.conveyor.origin) so a retried step recognises
  // its own object.
  std::string origin;
};

// "chains/<id>/steps/<step_index>" for a chain's call (context already
// validated), "" for a direct call.
std::string WriteOriginOf(const conveyor::v1::StepContext& context);

// ErrorInfo reasons of a refused key.
inline constexpr absl::string_view kReasonUnsafeKey = "UNSAFE_OBJECT_KEY";
inline constexpr absl::string_view kReasonWrongExtension = "WRONG_EXTENSION";

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
// a template over kMaxKeyTemplateBytes (common/step_specs.h; reason FIELD_TOO_LONG), an unknown
// placeholder, an unbalanced '{' or '}', a bad resulting key, or a key that
// does not end in "." + fields.ext (reason WRONG_EXTENSION: the extension is
// always the image's own, so a PNG is never served as index.html).
// There is no escape for literal braces: keys never need them.
absl::StatusOr<std::string> ExpandKeyTemplate(absl::string_view key_template,
                                              const KeyFields& fields);

// The safe key character set: a key is 1..kMaxKeyBytes bytes of
// [A-Za-z0-9._=-] and '/' (which makes sub-directories); it must not start or
// end with '/', and no segment may be empty or start with '.' (no ".", "..",
// ".ssh", ".htaccess"). INVALID_ARGUMENT naming `field` otherwise (reason
// UNSAFE_OBJECT_KEY; FIELD_TOO_LONG for a long one). The same set is safe in a
// file name, an S3 key and a URL path without escaping surprises.
absl::Status ValidateObjectKey(absl::string_view key, absl::string_view field);

}  // namespace conveyor::stages::upload

#endif  // CONVEYOR_STAGES_UPLOAD_OBJECT_KEY_H_
