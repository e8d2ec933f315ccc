#include "stages/download/download.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/image_header.h"
#include "stages/common/ssrf_guard.h"
#include "common/status_details.h"
#include "common/step_specs.h"

namespace conveyor::stages::download {
namespace {

constexpr absl::string_view kUrlField = "spec.url";

absl::Status HttpError(absl::StatusCode code, int http_status, absl::string_view url) {
  return WithErrorReason(
      absl::Status(code, absl::StrCat("GET \"", url, "\" answered HTTP ", http_status)),
      kHttpStatus, {{"http_status", absl::StrCat(http_status)}});
}

std::string HostOf(absl::string_view url) {
  // Enough for a log field: the text between "://" and the next '/', '?' or '#'.
  size_t start = url.find("://");
  if (start == absl::string_view::npos) return "";
  url.remove_prefix(start + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  if (size_t at = url.rfind('@'); at != absl::string_view::npos) url.remove_prefix(at + 1);
  return std::string(url);
}

}  // namespace

absl::Status DownloadStatusFromHttp(int http_status, absl::string_view url) {
  if (http_status >= 200 && http_status <= 299) return absl::OkStatus();
  if (http_status == 404 || http_status == 410) {
    return HttpError(absl::StatusCode::kNotFound, http_status, url);
  }
  if (http_status == 401 || http_status == 403) {
    return HttpError(absl::StatusCode::kPermissionDenied, http_status, url);
  }
  if (http_status == 408 || http_status == 429 || (http_status >= 500 && http_status <= 599)) {
    return HttpError(absl::StatusCode::kUnavailable, http_status, url);
  }
  return HttpError(absl::StatusCode::kFailedPrecondition, http_status, url);
}

absl::Status Downloader::Download(const v1::DownloadRequest& request,
                                  v1::DownloadResponse& response,
                                  const std::function<bool()>& cancelled, absl::Time deadline,
                                  DownloadStats& stats) const {
  const v1::DownloadSpec& spec = request.spec();
  // The orchestrator's rules, then libcurl's stricter parse of the URL.
  if (absl::Status valid = CheckDownloadSpec("spec", spec); !valid.ok()) return valid;
  if (absl::Status valid = ValidateHttpUrl(kUrlField, spec.url()); !valid.ok()) return valid;
  stats.host = HostOf(spec.url());

  HttpRequest http;
  http.url = spec.url();
  http.url_field = std::string(kUrlField);
  http.follow_redirects = true;
  http.max_redirects = options_.max_redirects;
  http.max_response_bytes =
      spec.max_bytes() == 0 ? options_.max_bytes : std::min(spec.max_bytes(), options_.max_bytes);
  http.deadline = deadline;
  http.cancelled = cancelled;
  http.headers = {{"Accept", "image/jpeg, image/png, image/webp;q=0.9, */*;q=0.1"}};

  absl::StatusOr<HttpResponse> fetched = client_.Fetch(http);
  if (!fetched.ok()) return fetched.status();
  stats.http_status = fetched->status;
  stats.redirects = fetched->redirects;
  stats.bytes = static_cast<int64_t>(fetched->body.size());
  if (absl::Status status = DownloadStatusFromHttp(fetched->status, fetched->final_url);
      !status.ok()) {
    return status;
  }

  absl::StatusOr<ImageHeader> header = ParseImageHeader(fetched->body);
  if (!header.ok()) {
    return WithErrorReason(
        InvalidField(kUrlField, absl::StrCat("the ", fetched->body.size(),
                                             " bytes served are not a JPEG, PNG or WebP image (",
                                             header.status().message(), ")")),
        kNotAnImage, {});
  }
  v1::Image* image = response.mutable_image();
  image->set_media_type(std::string(MediaTypeOf(header->kind)));
  image->set_width(header->width);
  image->set_height(header->height);
  image->set_data(std::move(fetched->body));
  response.set_final_url(fetched->final_url);
  response.set_http_status(fetched->status);
  response.set_redirects(fetched->redirects);
  return absl::OkStatus();
}

}  // namespace conveyor::stages::download
