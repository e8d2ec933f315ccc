// PUTs objects to an S3-compatible endpoint, signed with AWS Signature V4 by
// libcurl (CURLOPT_AWS_SIGV4).
#ifndef CONVEYOR_STAGES_UPLOAD_S3_STORE_H_
#define CONVEYOR_STAGES_UPLOAD_S3_STORE_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "conveyor/v1/stages.pb.h"
#include "stages/upload/object_key.h"

namespace conveyor::stages::upload {

struct S3Options {
  // "http://host:port" or "https://host[:port]", no path.
  std::string endpoint;
  std::string region = "us-east-1";
  std::string access_key_id;
  // Never logged, never put in a status message.
  std::string secret_access_key;
  // Address buckets as bucket.host instead of host/bucket.
  bool virtual_host_style = false;
  absl::Duration connect_timeout = absl::Seconds(5);
  // Whole-request limit; the call's deadline shortens it.
  absl::Duration timeout = absl::Seconds(60);
  // --s3-allowed-buckets: the only buckets Put writes to; empty allows any.
  std::vector<std::string> allowed_buckets;
};

// ErrorInfo reasons.
inline constexpr absl::string_view kReasonBucketNotAllowed = "BUCKET_NOT_ALLOWED";
inline constexpr absl::string_view kReasonObjectExists = "OBJECT_EXISTS";

// ALREADY_EXISTS reason OBJECT_EXISTS naming `uri`: --no-overwrite refused to
// replace an object another chain or step wrote.
absl::Status ObjectExists(absl::string_view uri);

// INVALID_ARGUMENT (naming the flag) if the endpoint is not http(s)://host[:port]
// or a credential or the region is missing.
absl::Status ValidateS3Options(const S3Options& options);

// The S3 error code in an XML error body ("<Code>NoSuchBucket</Code>"), or "".
std::string S3ErrorCode(absl::string_view body);

// Maps a non-2xx S3 answer to a status whose code tells the orchestrator
// whether a retry can help:
//   403 -> PERMISSION_DENIED; 404 -> NOT_FOUND (NoSuchBucket, or any other);
//   408, 429, 5xx -> UNAVAILABLE; 409 -> ABORTED; other 3xx/4xx ->
//   FAILED_PRECONDITION. The S3 code, when present, goes into the message and
//   into an ErrorInfo reason "S3_<UPPER_SNAKE_CODE>" (e.g. S3_NO_SUCH_BUCKET).
absl::Status S3HttpError(long http_status, absl::string_view s3_code, absl::string_view url);

struct S3Exchange;

// Thread-safe: each Put uses its own curl handle. curl_global_init must have
// run before the first Put (main does it before any thread starts).
class S3Store {
 public:
  explicit S3Store(S3Options options) : options_(std::move(options)) {}

  // PUT `bytes` as `bucket`/`key` with Content-Type `media_type` and
  // x-amz-content-sha256 `sha256_hex` (which must be the bytes' SHA-256).
  // Returns the object with its s3:// URI and the ETag from the response.
  // Every object carries x-amz-meta-conveyor-sha256 and, when
  // overwrite.origin is set, x-amz-meta-conveyor-origin.
  // With overwrite.no_overwrite, a HEAD comes first: an object with the same
  // SHA-256 is success without a PUT; one whose origin is overwrite.origin
  // (an earlier attempt of the same chain and step) is overwritten; any other
  // gets ALREADY_EXISTS reason OBJECT_EXISTS; an absent one is PUT with
  // If-None-Match: * (412 -> ALREADY_EXISTS).
  // Codes: PERMISSION_DENIED reason BUCKET_NOT_ALLOWED for a bucket outside
  // allowed_buckets (nothing is sent); S3HttpError's for an HTTP error;
  // UNAVAILABLE when the endpoint cannot be reached; DEADLINE_EXCEEDED on a
  // timeout or when `deadline` passes; CANCELLED when `cancelled` turns true.
  absl::StatusOr<conveyor::v1::StoredObject> Put(absl::string_view bucket, absl::string_view key,
                                                 absl::string_view bytes,
                                                 absl::string_view media_type,
                                                 absl::string_view sha256_hex,
                                                 const std::function<bool()>& cancelled,
                                                 absl::Time deadline,
                                                 const OverwritePolicy& overwrite = {}) const;

  // OK if `bucket` may be written (allowed_buckets empty or naming it).
  absl::Status CheckBucketAllowed(absl::string_view bucket) const;

 private:
  // One signed request; the HTTP status, or the transport error's status.
  absl::StatusOr<long> Perform(absl::string_view method, const std::string& url,
                               const std::vector<std::string>& header_lines,
                               absl::string_view body, S3Exchange& exchange,
                               const std::function<bool()>& cancelled, absl::Time deadline) const;

  S3Options options_;
};

}  // namespace conveyor::stages::upload

#endif  // CONVEYOR_STAGES_UPLOAD_S3_STORE_H_
