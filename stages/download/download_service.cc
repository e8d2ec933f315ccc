#include "stages/download/download_service.h"

#include "absl/strings/str_cat.h"

namespace conveyor::stages::download {

absl::Status DownloadService::Work(const v1::DownloadRequest& req, v1::DownloadResponse& resp,
                                   CallScope& call) const {
  DownloadStats stats;
  absl::Status status = downloader_.Download(req, resp, call.cancelled, call.deadline, stats);
  if (!stats.host.empty()) call.log_fields.emplace_back("host", stats.host);
  if (stats.http_status != 0) {
    call.log_fields.emplace_back("http_status", absl::StrCat(stats.http_status));
    call.log_fields.emplace_back("redirects", absl::StrCat(stats.redirects));
    call.log_fields.emplace_back("body_bytes", absl::StrCat(stats.bytes));
  }
  if (status.ok()) {
    call.log_fields.emplace_back("out_dims",
                                 absl::StrCat(resp.image().width(), "x", resp.image().height()));
  }
  return status;
}

}  // namespace conveyor::stages::download
