// The upload stage's logic: validate the request, name the object, store it.
#ifndef CONVEYOR_STAGES_UPLOAD_UPLOADER_H_
#define CONVEYOR_STAGES_UPLOAD_UPLOADER_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "conveyor/v1/stages.pb.h"
#include "stages/upload/file_store.h"
#include "stages/upload/s3_store.h"

namespace conveyor::stages::upload {

struct UploaderOptions {
  // --no-overwrite (see OverwritePolicy).
  bool no_overwrite = false;
};

// Thread-safe. Does not own the stores. Either may be null when the worker was
// started without it (empty --file-root, no --s3-endpoint): destinations of
// that kind then fail with FAILED_PRECONDITION.
class Uploader {
 public:
  Uploader(const FileStore* files, const S3Store* s3, UploaderOptions options = {})
      : files_(files), s3_(s3), options_(options) {}

  // Stores request.image() at spec.destination / expanded spec.key_template.
  // INVALID_ARGUMENT for a bad destination, key template or context.chain
  // (over-long ones with reason FIELD_TOO_LONG, before anything else), or
  // for image bytes that are not a JPEG, PNG or WebP (naming image.data);
  // PERMISSION_DENIED BUCKET_NOT_ALLOWED for a bucket outside
  // --s3-allowed-buckets; otherwise the codes of FileStore::Write and
  // S3Store::Put (ALREADY_EXISTS OBJECT_EXISTS under --no-overwrite). Appends
  // key=value pairs for the request's log line to `log_fields`.
  absl::Status Upload(const conveyor::v1::UploadRequest& request,
                      conveyor::v1::UploadResponse& response,
                      const std::function<bool()>& cancelled, absl::Time deadline,
                      std::vector<std::pair<std::string, std::string>>& log_fields) const;

 private:
  const FileStore* files_;
  const S3Store* s3_;
  UploaderOptions options_;
};

}  // namespace conveyor::stages::upload

#endif  // CONVEYOR_STAGES_UPLOAD_UPLOADER_H_
