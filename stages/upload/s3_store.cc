#include "stages/upload/s3_store.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/status_details.h"
#include "stages/upload/destination.h"

namespace conveyor::stages::upload {

// User metadata every object we write carries: who wrote it and its digest,
// so a --no-overwrite worker can tell its own earlier write (a retry) from
// somebody else's object.
constexpr absl::string_view kOriginHeader = "x-amz-meta-conveyor-origin";
constexpr absl::string_view kSha256Header = "x-amz-meta-conveyor-sha256";
// SHA-256 of the empty string: the payload hash of a HEAD.
constexpr absl::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct S3Exchange {
  std::string body;
  std::string etag;
  std::string origin;  // kOriginHeader of a HEAD answer
  std::string sha256;  // kSha256Header of a HEAD answer
  const std::function<bool()>* cancelled = nullptr;
};

namespace {

// Error bodies are small XML documents; keep no more than this of one.
constexpr size_t kMaxErrorBodyBytes = 64 << 10;

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* exchange = static_cast<S3Exchange*>(user);
  const size_t bytes = size * count;
  const size_t room = kMaxErrorBodyBytes - std::min(kMaxErrorBodyBytes, exchange->body.size());
  exchange->body.append(data, std::min(bytes, room));
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* exchange = static_cast<S3Exchange*>(user);
  absl::string_view line(data, size * count);
  const auto take = [&line](absl::string_view name, std::string& out) {
    if (line.size() > name.size() && absl::StartsWithIgnoreCase(line, name) &&
        line[name.size()] == ':') {
      out = std::string(absl::StripAsciiWhitespace(line.substr(name.size() + 1)));
    }
  };
  take("etag", exchange->etag);
  take(kOriginHeader, exchange->origin);
  take(kSha256Header, exchange->sha256);
  return size * count;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* exchange = static_cast<S3Exchange*>(user);
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

absl::Status ObjectExists(absl::string_view uri) {
  return WithErrorReason(
      absl::AlreadyExistsError(absl::StrCat(
          "object ", uri, " exists and was written by another chain or step; this worker runs "
          "with --no-overwrite")),
      kReasonObjectExists, {{"uri", std::string(uri)}});
}

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
        "--s3-endpoint needs credentials: --s3-access-key-id and --s3-secret-access-key-file "
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

absl::StatusOr<long> S3Store::Perform(absl::string_view method, const std::string& url,
                                      const std::vector<std::string>& header_lines,
                                      absl::string_view body, S3Exchange& exchange,
                                      const std::function<bool()>& cancelled,
                                      absl::Time deadline) const {
  absl::Duration budget = options_.timeout;
  if (deadline != absl::InfiniteFuture()) budget = std::min(budget, deadline - absl::Now());
  if (budget <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError(
        absl::StrCat("deadline passed before the S3 ", method, " started"));
  }

  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* c = curl.get();

  // Only headers that are really sent: libcurl 7.88 signs every header in
  // this list, even an "Expect:" that only suppresses one, and a server that
  // verifies would then miss a signed header.
  curl_slist* raw_headers = nullptr;
  for (const std::string& header : header_lines) {
    raw_headers = curl_slist_append(raw_headers, header.c_str());
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers(raw_headers);
  if (headers == nullptr) return absl::InternalError("curl_slist_append failed");

  const std::string sigv4 = absl::StrCat("aws:amz:", options_.region, ":s3");
  exchange.cancelled = &cancelled;

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    // The body goes as POSTFIELDS with the method forced to PUT: libcurl's
    // SigV4 then hashes exactly the bytes it sends.
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  }
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
    const std::string message =
        absl::StrCat("S3 ", method, " ", url, ": ", curl_easy_strerror(code));
    switch (code) {
      case CURLE_ABORTED_BY_CALLBACK:
        return absl::CancelledError(absl::StrCat("upload cancelled during the S3 ", method));
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
  return http_status;
}

absl::StatusOr<conveyor::v1::StoredObject> S3Store::Put(
    absl::string_view bucket, absl::string_view key, absl::string_view bytes,
    absl::string_view media_type, absl::string_view sha256_hex,
    const std::function<bool()>& cancelled, absl::Time deadline,
    const OverwritePolicy& overwrite) const {
  if (absl::Status allowed = CheckBucketAllowed(bucket); !allowed.ok()) return allowed;
  const std::string url = S3ObjectUrl(options_.endpoint, bucket, key, options_.virtual_host_style);

  conveyor::v1::StoredObject object;
  object.set_uri(S3Uri(bucket, key));
  object.set_size_bytes(static_cast<int64_t>(bytes.size()));
  object.set_sha256(std::string(sha256_hex));
  object.set_media_type(std::string(media_type));

  bool only_if_absent = false;
  if (overwrite.no_overwrite) {
    // HEAD first: servers without conditional writes (s3rver, older MinIO)
    // ignore If-None-Match, and the metadata tells a retry of the same step
    // (which may overwrite its own object) from another writer's object.
    S3Exchange head;
    absl::StatusOr<long> head_status =
        Perform("HEAD", url, {absl::StrCat("x-amz-content-sha256: ", kEmptySha256)}, "", head,
                cancelled, deadline);
    if (!head_status.ok()) return head_status.status();
    if (*head_status == 200) {
      if (head.sha256 == sha256_hex) {
        // The same bytes are there already: the write is done (idempotent).
        object.set_etag(head.etag);
        return object;
      }
      if (head.origin.empty() || head.origin != overwrite.origin) {
        return ObjectExists(object.uri());
      }
      // Our own earlier attempt: overwrite it.
    } else if (*head_status == 404) {
      only_if_absent = true;
    } else {
      return S3HttpError(*head_status, "", url);
    }
  }

  std::vector<std::string> header_lines = {
      absl::StrCat("Content-Type: ", media_type),
      absl::StrCat("x-amz-content-sha256: ", sha256_hex),
      absl::StrCat(kSha256Header, ": ", sha256_hex),
  };
  if (!overwrite.origin.empty()) {
    header_lines.push_back(absl::StrCat(kOriginHeader, ": ", overwrite.origin));
  }
  // A server with conditional writes (AWS S3 since 2024) closes the race
  // between our HEAD and PUT: 412 if somebody created the object meanwhile.
  if (only_if_absent) header_lines.push_back("If-None-Match: *");
  S3Exchange exchange;
  absl::StatusOr<long> status =
      Perform("PUT", url, header_lines, bytes, exchange, cancelled, deadline);
  if (!status.ok()) return status.status();
  if (*status == 412 && only_if_absent) return ObjectExists(object.uri());
  if (*status < 200 || *status > 299) {
    return S3HttpError(*status, S3ErrorCode(exchange.body), url);
  }
  object.set_etag(exchange.etag);
  return object;
}

absl::Status S3Store::CheckBucketAllowed(absl::string_view bucket) const {
  if (options_.allowed_buckets.empty()) return absl::OkStatus();
  for (const std::string& allowed : options_.allowed_buckets) {
    if (allowed == bucket) return absl::OkStatus();
  }
  return WithErrorReason(
      absl::PermissionDeniedError(absl::StrCat(
          "spec.destination: bucket ", QuoteForMessage(bucket, 80),
          " is not in this worker's --s3-allowed-buckets; it writes only to those")),
      kReasonBucketNotAllowed, {{"bucket", std::string(bucket.substr(0, 80))}});
}

}  // namespace conveyor::stages::upload
