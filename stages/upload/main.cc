// conveyor-upload: stores images in a local directory tree or on an
// S3-compatible endpoint.
#include <curl/curl.h>

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/optional.h"
#include "common/secret_file.h"
#include "common/worker_main.h"
#include "stages/upload/file_store.h"
#include "stages/upload/s3_store.h"
#include "stages/upload/upload_service.h"
#include "stages/upload/uploader.h"

namespace {

constexpr char kAbout[] =
    "conveyor-upload: the upload stage worker (conveyor.v1.UploadStage). Stores images "
    "under --file-root (file:///dir destinations) or on an S3-compatible endpoint "
    "(s3://bucket[/prefix] destinations).";

// The first non-empty environment variable of `names`, or "".
std::string FirstEnv(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return value;
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  conveyor::WorkerMain worker(conveyor::v1::STAGE_KIND_UPLOAD, kAbout);
  namespace upload = conveyor::stages::upload;
  CLI::App& app = worker.app();

  std::string file_root = "/var/lib/conveyor/objects";
  conveyor::AddEnvOption(app, "--file-root", file_root,
                         "absolute directory that file:// destinations must lie under; created if "
                         "missing; empty disables file://")
      ->capture_default_str();
  upload::S3Options s3;
  conveyor::AddEnvOption(
      app, "--s3-endpoint", s3.endpoint,
      "S3-compatible endpoint, e.g. http://127.0.0.1:4568; empty disables s3://");
  conveyor::AddEnvOption(app, "--s3-region", s3.region, "region used to sign requests (SigV4)")
      ->capture_default_str();
  conveyor::AddEnvOption(app, "--s3-access-key-id", s3.access_key_id,
                         "S3 access key id (else AWS_ACCESS_KEY_ID)");
  // The secret key never comes from argv (ps shows command lines): a file,
  // else the environment.
  std::string secret_access_key_file;
  conveyor::AddEnvOption(app, "--s3-secret-access-key-file", secret_access_key_file,
                         "file holding the S3 secret key (else CONVEYOR_S3_SECRET_ACCESS_KEY, then "
                         "AWS_SECRET_ACCESS_KEY, from the environment)");
  conveyor::AddEnvFlag(app, "--s3-virtual-host", s3.virtual_host_style,
                       "address buckets as bucket.host instead of host/bucket (path style)");
  conveyor::AddDurationFlag(app, "--s3-connect-timeout", s3.connect_timeout, "S3 connect timeout");
  conveyor::AddDurationFlag(app, "--s3-timeout", s3.timeout,
                            "whole S3 PUT timeout (the call's deadline may shorten it)");
  conveyor::AddEnvOption(
      app, "--s3-allowed-buckets", s3.allowed_buckets,
      "the only buckets s3:// destinations may name (comma-separated); others get "
      "PERMISSION_DENIED BUCKET_NOT_ALLOWED; empty allows every bucket the "
      "credentials can write")
      ->delimiter(',');
  upload::UploaderOptions uploader_options;
  conveyor::AddEnvFlag(
      app, "--no-overwrite", uploader_options.no_overwrite,
      "never replace an object another chain or step wrote (file: link(), S3: HEAD + "
      "If-None-Match: *): ALREADY_EXISTS OBJECT_EXISTS; a retry of the same chain "
      "and step still replaces its own object, and the same bytes are success");
  if (auto exit_code = worker.Parse(argc, argv)) return *exit_code;

  // Credentials: flag, then CONVEYOR_S3_* (both via CLI11), then the AWS_*
  // names every S3 tool understands; the secret key from its file or the
  // environment.
  if (s3.access_key_id.empty()) s3.access_key_id = FirstEnv({"AWS_ACCESS_KEY_ID"});
  if (!secret_access_key_file.empty()) {
    absl::StatusOr<std::string> secret = conveyor::ReadSecretFile(secret_access_key_file);
    if (!secret.ok()) {
      std::fprintf(stderr, "conveyor-upload: --s3-secret-access-key-file: %s\n",
                   std::string(secret.status().message()).c_str());
      return 2;
    }
    s3.secret_access_key = *std::move(secret);
  } else {
    s3.secret_access_key = FirstEnv({"CONVEYOR_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"});
  }

  absl::optional<upload::FileStore> files;
  if (!file_root.empty()) {
    absl::StatusOr<upload::FileStore> opened = upload::FileStore::Open(file_root);
    if (!opened.ok()) {
      std::fprintf(stderr, "conveyor-upload: %s\n", std::string(opened.status().message()).c_str());
      return 2;
    }
    files.emplace(*std::move(opened));
  }
  std::unique_ptr<upload::S3Store> s3_store;
  if (!s3.endpoint.empty()) {
    if (absl::Status valid = upload::ValidateS3Options(s3); !valid.ok()) {
      std::fprintf(stderr, "conveyor-upload: %s\n", std::string(valid.message()).c_str());
      return 2;
    }
    s3_store = std::make_unique<upload::S3Store>(s3);
  }
  // Before any thread exists: curl_global_init is not thread-safe.
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    std::fprintf(stderr, "conveyor-upload: curl_global_init failed\n");
    return 1;
  }

  int exit_code;
  {
    const upload::Uploader uploader(files.has_value() ? &*files : nullptr, s3_store.get(),
                                    uploader_options);
    exit_code = worker.Serve<upload::UploadService>(uploader);
  }
  curl_global_cleanup();
  return exit_code;
}
