// UploadSpec.destination URIs: parsing and the URIs/URLs built from them.
// Pure functions, no I/O.
#ifndef CONVEYOR_STAGES_UPLOAD_DESTINATION_H_
#define CONVEYOR_STAGES_UPLOAD_DESTINATION_H_

#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace conveyor::stages::upload {

// "file:///abs/dir" (or "file://localhost/abs/dir"): a directory on the
// worker's file system, which must lie under its --file-root.
struct FileDestination {
  // Absolute, percent-decoded, not yet normalized (FileStore does that).
  std::string dir;
};

// "s3://bucket" or "s3://bucket/prefix": a bucket on the worker's
// --s3-endpoint, and an optional key prefix.
struct S3Destination {
  std::string bucket;
  // Taken literally (S3 keys are not percent-encoded in s3:// URIs), without
  // leading or trailing '/'; may be empty.
  std::string prefix;
};

using Destination = std::variant<FileDestination, S3Destination>;

// INVALID_ARGUMENT naming spec.destination for an empty value, another scheme,
// a file:// host other than "localhost", a relative path, a query or fragment,
// a bad %-escape or one decoding to a control character, a bucket name that is
// not 3..63 of [a-z0-9.-] starting and ending with a letter or digit, or a
// prefix that is not a valid key (see ValidateObjectKey).
absl::StatusOr<Destination> ParseDestination(absl::string_view uri);

// `prefix` + "/" + `key`, or `key` alone when the prefix is empty.
std::string JoinKey(absl::string_view prefix, absl::string_view key);

// Percent-encodes every byte except RFC 3986 unreserved characters and '/'
// (what S3 expects in a path, and what SigV4 signs).
std::string EncodePath(absl::string_view path);

// "file://" + the percent-encoded absolute path.
std::string FileUri(absl::string_view absolute_path);

// "s3://bucket/key".
std::string S3Uri(absl::string_view bucket, absl::string_view key);

// The HTTP URL of an object on `endpoint` ("http://host:port", no path):
// path style "http://host:port/bucket/key", or virtual-host style
// "http://bucket.host:port/key". The key is percent-encoded.
std::string S3ObjectUrl(absl::string_view endpoint, absl::string_view bucket, absl::string_view key,
                        bool virtual_host_style);

}  // namespace conveyor::stages::upload

#endif  // CONVEYOR_STAGES_UPLOAD_DESTINATION_H_
