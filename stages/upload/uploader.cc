#include "stages/upload/uploader.h"

#include <variant>

#include "absl/strings/str_cat.h"
#include "common/image_header.h"
#include "common/status_details.h"
#include "common/step_specs.h"
#include "stages/upload/destination.h"
#include "stages/upload/object_key.h"
#include "common/sha256.h"

namespace conveyor::stages::upload {

absl::Status Uploader::Upload(const conveyor::v1::UploadRequest& request,
                              conveyor::v1::UploadResponse& response,
                              const std::function<bool()>& cancelled, absl::Time deadline,
                              std::vector<std::pair<std::string, std::string>>& log_fields) const {
  // The rules the orchestrator checked at submit first (lengths before
  // anything may echo or walk an 8 MB field); ParseDestination and the key
  // template's expansion add the worker's own below.
  if (absl::Status s = CheckUploadSpec("spec", request.spec()); !s.ok()) return s;
  absl::StatusOr<Destination> destination = ParseDestination(request.spec().destination());
  if (!destination.ok()) return destination.status();

  if (const auto* s3 = std::get_if<S3Destination>(&*destination); s3 != nullptr && s3_ != nullptr) {
    if (absl::Status allowed = s3_->CheckBucketAllowed(s3->bucket); !allowed.ok()) return allowed;
  }

  // Trust the bytes, not the caller's media_type/width/height.
  const std::string& data = request.image().data();
  absl::StatusOr<ImageHeader> header = ParseImageHeader(data);
  if (!header.ok()) return InvalidField("image.data", header.status().message());

  // The S3 header needs the digest up front, and so does the key of a direct
  // call; a file:// write hashes the bytes as it writes them.
  const auto* s3_destination = std::get_if<S3Destination>(&*destination);
  std::string sha256_hex;
  if (s3_destination != nullptr || request.context().chain().empty()) {
    sha256_hex = Sha256Hex(data);
  }

  absl::StatusOr<std::string> chain_id = ChainIdOf(request.context(), sha256_hex);
  if (!chain_id.ok()) return chain_id.status();
  KeyFields fields;
  fields.chain_id = *std::move(chain_id);
  fields.step = request.context().step_index();
  fields.ext = std::string(ExtensionOf(header->kind));
  fields.width = header->width;
  fields.height = header->height;
  absl::StatusOr<std::string> key = ExpandKeyTemplate(request.spec().key_template(), fields);
  if (!key.ok()) return key.status();
  const std::string media_type(MediaTypeOf(header->kind));
  OverwritePolicy overwrite;
  overwrite.no_overwrite = options_.no_overwrite;
  overwrite.origin = WriteOriginOf(request.context());

  absl::StatusOr<conveyor::v1::StoredObject> stored;
  if (s3_destination != nullptr) {
    if (s3_ == nullptr) {
      return absl::FailedPreconditionError(
          "spec.destination: this worker has no --s3-endpoint, so it cannot store to s3://");
    }
    const std::string full_key = JoinKey(s3_destination->prefix, *key);
    if (absl::Status valid = ValidateObjectKey(full_key, "spec.key_template"); !valid.ok()) {
      return valid;
    }
    log_fields.emplace_back("store", "s3");
    stored = s3_->Put(s3_destination->bucket, full_key, data, media_type, sha256_hex, cancelled,
                      deadline, overwrite);
  } else {
    if (files_ == nullptr) {
      return absl::FailedPreconditionError(
          "spec.destination: this worker has no --file-root, so it cannot store to file://");
    }
    log_fields.emplace_back("store", "file");
    stored = files_->Write(std::get<FileDestination>(*destination).dir, *key, data, media_type,
                           cancelled, overwrite);
  }
  if (!stored.ok()) return stored.status();
  log_fields.emplace_back("uri", stored->uri());
  log_fields.emplace_back("size", absl::StrCat(stored->size_bytes()));
  *response.mutable_object() = *std::move(stored);
  return absl::OkStatus();
}

}  // namespace conveyor::stages::upload
