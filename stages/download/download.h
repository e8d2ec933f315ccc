// The download stage's logic (no gRPC): fetch a URL with the guarded HTTP
// client, prove the bytes are an image by their magic number, describe it.
//
// Codes (besides HttpClient's, see stages/common/http_client.h):
//  INVALID_ARGUMENT     spec.url missing/malformed/not http(s); spec.max_bytes
//                       negative; body over the size limit (reason TOO_LARGE:
//                       the same URL will be as large on a retry); more
//                       redirects than --max-redirects (TOO_MANY_REDIRECTS);
//                       bytes that are not JPEG/PNG/WebP (NOT_AN_IMAGE)
//  PERMISSION_DENIED    guard refused an address (DESTINATION_BLOCKED), or
//                       the server answered 401/403 (HTTP_STATUS)
//  NOT_FOUND            404, 410
//  UNAVAILABLE          408, 429, 5xx; DNS or connection failure
//  FAILED_PRECONDITION  other 4xx, or a 1xx/3xx final answer: the server
//                       refuses this request as it is, a retry will not help
//  DEADLINE_EXCEEDED    connect/total timeout or the call's deadline
//  CANCELLED            the call was cancelled
#ifndef CONVEYOR_STAGES_DOWNLOAD_DOWNLOAD_H_
#define CONVEYOR_STAGES_DOWNLOAD_DOWNLOAD_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "conveyor/v1/stages.pb.h"
#include "stages/common/http_client.h"

namespace conveyor::stages::download {

struct DownloadOptions {
  // Largest body accepted; DownloadSpec.max_bytes may only lower it.
  int64_t max_bytes = int64_t{32} << 20;
  // Redirects followed; one more is TOO_MANY_REDIRECTS.
  int max_redirects = 5;
};

// What a download did, for the log line (no URL: it may carry tokens).
struct DownloadStats {
  std::string host;
  int http_status = 0;
  int redirects = 0;
  int64_t bytes = 0;
};

// ErrorInfo reasons.
inline constexpr absl::string_view kNotAnImage = "NOT_AN_IMAGE";
inline constexpr absl::string_view kHttpStatus = "HTTP_STATUS";

// Maps a final HTTP status that is not 2xx to the code that says whether a
// retry can help (see the table above); OK for 2xx.
absl::Status DownloadStatusFromHttp(int http_status, absl::string_view url);

class Downloader {
 public:
  // `client` must outlive the downloader. Thread-safe.
  Downloader(const HttpClient& client, DownloadOptions options)
      : client_(client), options_(options) {}

  absl::Status Download(const v1::DownloadRequest& request, v1::DownloadResponse& response,
                        const std::function<bool()>& cancelled, absl::Time deadline,
                        DownloadStats& stats) const;

 private:
  const HttpClient& client_;
  DownloadOptions options_;
};

}  // namespace conveyor::stages::download

#endif  // CONVEYOR_STAGES_DOWNLOAD_DOWNLOAD_H_
