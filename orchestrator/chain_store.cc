#include "orchestrator/chain_store.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_details.h"
#include "orchestrator/chain_validator.h"

namespace conveyor::orchestrator {

absl::Status StaleVersionError(int64_t expected, const std::string& actual) {
  return WithErrorReason(absl::AbortedError(absl::StrCat("chain changed concurrently (expected "
                                                         "version ",
                                                         expected, ", stored ", actual, ")")),
                         "STALE_VERSION");
}

bool IsBlobGone(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition &&
         ErrorReason(status) == "BLOB_GONE";
}

bool IsStaleVersion(const absl::Status& status) {
  return status.code() == absl::StatusCode::kAborted && ErrorReason(status) == "STALE_VERSION";
}

absl::Status ChainExistsError(absl::string_view what) {
  // Only a collision of two random 128-bit ids gets here.
  return WithErrorReason(
      absl::AlreadyExistsError(absl::StrCat(what, ": a chain with this id exists already")),
      "CHAIN_EXISTS");
}

absl::Status BlobGoneError(absl::string_view what) {
  return WithErrorReason(absl::FailedPreconditionError(
                             absl::StrCat(what, ": a stored image it needs was freed meanwhile")),
                         "BLOB_GONE");
}

absl::Status BlobStoreFullError(absl::string_view blob_bytes) {
  return WithErrorReason(
      absl::ResourceExhaustedError(absl::StrCat(
          "the image store is full: ", blob_bytes,
          " bytes of images are held for chains (--max-blob-bytes); retry when running "
          "chains have finished, or purge failed ones")),
      "BLOB_STORE_FULL", {{"blob_bytes", std::string(blob_bytes)}});
}

absl::Status TenantQuotaError(absl::string_view quota, absl::string_view tenant, int64_t limit,
                              absl::string_view held) {
  const bool chains = quota == "chains_in_flight";
  return WithErrorReason(
      absl::ResourceExhaustedError(absl::StrCat(
          "tenant \"", tenant, "\" is at its ", quota, " quota: ", held, " of ", limit,
          chains ? " chains in flight (--tenant-max-chains-in-flight); retry when some have ended"
                 : " bytes of images stored (--tenant-max-stored-bytes); retry when running "
                   "chains have finished, or purge failed ones")),
      "TENANT_QUOTA_EXCEEDED",
      {{"quota", std::string(quota)}, {"tenant", std::string(tenant)},
       {"limit", std::to_string(limit)}, {"held", std::string(held)}});
}

}  // namespace conveyor::orchestrator
