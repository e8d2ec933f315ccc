#include "stages/upload/s3_store.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "stages/common/status_details.h"
#include "stages/upload/destination.h"

namespace conveyor::stages::upload {
namespace {

// Error bodies are small XML documents; keep no more than this of one.
constexpr size_t kMaxErrorBodyBytes = 64 << 10;

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

struct Exchange {
  std::string body;
  std::string etag;
  const std::function<bool()>* cancelled = nullptr;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* exchange = static_cast<Exchange*>(user);
  const size_t bytes = size * count;
  const size_t room = kMaxErrorBodyBytes - std::min(kMaxErrorBodyBytes, exchange->body.size());
  exchange->body.append(data, std::min(bytes, room));
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* exchange = static_cast<Exchange*>(user);
  absl::string_view line(data, size * count);
  if (absl::StartsWithIgnoreCase(line, "etag:")) {
    line.remove_prefix(5);
    exchange->etag = std::string(absl::StripAsciiWhitespace(line));
  }
  return size * count;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* exchange = static_cast<Exchange*>(user);
  return (*exchange->cancelled && (*exchange->cancelled)()) ? 1 : 0;
}

std::string UpperSnake(absl::string_view camel) {
  std::string out;
  for (size_t i = 0; i < camel.size(); ++i) {
    const char c = camel[i];
    if (!absl::ascii_isalnum(c)) continue;
    if (i > 0 && absl::ascii_isupper(c) && absl::ascii_islower(camel[i - 1])) out.push_back('_');
    out.push_back(absl::ascii_toupper(c));
  }
  return out;
}

}  // namespace

absl::Status ValidateS3Options(const S3Options& options) {
  absl::string_view rest = options.endpoint;
  if (!absl::ConsumePrefix(&rest, "http://") && !absl::ConsumePrefix(&rest, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--s3-endpoint: want http://host[:port] or https://host[:port], got \"",
                     options.endpoint, "\""));
  }
  while (absl::ConsumeSuffix(&rest, "/")) {
  }
  if (rest.empty() || rest.find_first_of("/?#@") != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--s3-endpoint: want a scheme and host[:port] only, got \"", options.endpoint, "\""));
  }
  if (options.region.empty() || options.region.find_first_of(":/ ") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--s3-region: want a region such as us-east-1, got \"", options.region, "\""));
  }
  if (options.access_key_id.empty() || options.secret_access_key.empty()) {
    return absl::InvalidArgumentError(
        "--s3-endpoint needs credentials: --s3-access-key-id and --s3-secret-access-key "
        "(or CONVEYOR_S3_* / AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");
  }
  if (options.access_key_id.find(':') != std::string::npos) {
    return absl::InvalidArgumentError("--s3-access-key-id: must not contain ':'");
  }
  return absl::OkStatus();
}

std::string S3ErrorCode(absl::string_view body) {
  const size_t open = body.find("<Code>");
  if (open == absl::string_view::npos) return "";
  const size_t start = open + 6;
  const size_t close = body.find("</Code>", start);
  if (close == absl::string_view::npos || close - start > 128) return "";
  return std::string(body.substr(start, close - start));
}

absl::Status S3HttpError(long http_status, absl::string_view s3_code, absl::string_view url) {
  const std::string message = absl::StrCat("S3 PUT ", url, " answered HTTP ", http_status,
                                           s3_code.empty() ? "" : absl::StrCat(" ", s3_code));
  absl::Status status;
  if (http_status == 403) {
    status = absl::PermissionDeniedError(message);
  } else if (http_status == 404) {
    status = absl::NotFoundError(message);
  } else if (http_status == 408 || http_status == 429 || http_status >= 500) {
    status = absl::UnavailableError(message);
  } else if (http_status == 409) {
    status = absl::AbortedError(message);
  } else {
    status = absl::FailedPreconditionError(message);
  }
  if (!s3_code.empty()) status = WithErrorReason(status, absl::StrCat("S3_", UpperSnake(s3_code)));
  return status;
}

absl::StatusOr<conveyor::v1::StoredObject> S3Store::Put(
    absl::string_view bucket, absl::string_view key, absl::string_view bytes,
    absl::string_view media_type, absl::string_view sha256_hex,
    const std::function<bool()>& cancelled, absl::Time deadline) const {
  const std::string url = S3ObjectUrl(options_.endpoint, bucket, key, options_.virtual_host_style);
  absl::Duration budget = options_.timeout;
  if (deadline != absl::InfiniteFuture()) budget = std::min(budget, deadline - absl::Now());
  if (budget <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("deadline passed before the S3 PUT started");
  }

  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* c = curl.get();

  curl_slist* raw_headers = nullptr;
  const std::string content_type = absl::StrCat("Content-Type: ", media_type);
  const std::string content_sha = absl::StrCat("x-amz-content-sha256: ", sha256_hex);
  // Only headers that are really sent: libcurl 7.88 signs every header in
  // this list, even an "Expect:" that only suppresses one, and a server that
  // verifies would then miss a signed header.
  for (const std::string* header : {&content_type, &content_sha}) {
    raw_headers = curl_slist_append(raw_headers, header->c_str());
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers(raw_headers);
  if (headers == nullptr) return absl::InternalError("curl_slist_append failed");

  const std::string sigv4 = absl::StrCat("aws:amz:", options_.region, ":s3");
  Exchange exchange;
  exchange.cancelled = &cancelled;

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  // The body goes as POSTFIELDS with the method forced to PUT: libcurl's
  // SigV4 then hashes exactly the bytes it sends.
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(bytes.size()));
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, bytes.data());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
  curl_easy_setopt(c, CURLOPT_USERNAME, options_.access_key_id.c_str());
  curl_easy_setopt(c, CURLOPT_PASSWORD, options_.secret_access_key.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(budget))));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &exchange);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &exchange);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &exchange);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

  const CURLcode code = curl_easy_perform(c);
  if (code != CURLE_OK) {
    const std::string message = absl::StrCat("S3 PUT ", url, ": ", curl_easy_strerror(code));
    switch (code) {
      case CURLE_ABORTED_BY_CALLBACK:
        return absl::CancelledError("upload cancelled during the S3 PUT");
      case CURLE_OPERATION_TIMEDOUT:
        return absl::DeadlineExceededError(message);
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return absl::FailedPreconditionError(message);
      default:
        return absl::UnavailableError(message);
    }
  }
  long http_status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http_status);
  if (http_status < 200 || http_status > 299) {
    return S3HttpError(http_status, S3ErrorCode(exchange.body), url);
  }

  conveyor::v1::StoredObject object;
  object.set_uri(S3Uri(bucket, key));
  object.set_size_bytes(static_cast<int64_t>(bytes.size()));
  object.set_sha256(std::string(sha256_hex));
  object.set_etag(exchange.etag);
  object.set_media_type(std::string(media_type));
  return object;
}

}  // namespace conveyor::stages::upload
