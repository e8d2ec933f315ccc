#include "stages/common/http_client.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "common/step_specs.h"

namespace conveyor {
namespace {

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct CurlUrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
struct CurlListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
struct CurlStringDeleter {
  void operator()(char* text) const { curl_free(text); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using CurlUrl = std::unique_ptr<CURLU, CurlUrlDeleter>;
using CurlList = std::unique_ptr<curl_slist, CurlListDeleter>;
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

std::string UrlPart(CURLU* url, CURLUPart part) {
  char* raw = nullptr;
  if (curl_url_get(url, part, &raw, 0) != CURLUE_OK || raw == nullptr) return "";
  CurlString owned(raw);
  return std::string(owned.get());
}

// The host of the URL libcurl is working on (the current hop), for messages.
std::string CurrentHost(CURL* curl) {
  char* effective = nullptr;
  if (curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &effective) != CURLE_OK ||
      effective == nullptr) {
    return "";
  }
  CurlUrl url(curl_url());
  if (!url || curl_url_set(url.get(), CURLUPART_URL, effective, 0) != CURLUE_OK) return "";
  return UrlPart(url.get(), CURLUPART_HOST);
}

// Everything the callbacks of one transfer share. Lives on Fetch's stack.
struct Transfer {
  CURL* curl = nullptr;
  const HttpRequest* request = nullptr;
  const SsrfGuard* guard = nullptr;
  HttpResponse* response = nullptr;
  // The guard's verdict on the latest socket libcurl wanted: a transfer that
  // fails right after a refusal reports the refusal. (A host may resolve to a
  // refused and an allowed address; if libcurl then went on with the allowed
  // one, its own error is the one that matters.)
  absl::Status blocked;
  bool too_large = false;
  bool stopped_at_error_status = false;
  bool cancelled = false;
};

// Called by libcurl for every socket it wants to open, with the resolved
// address: the one place where the guard sees what is really connected to.
curl_socket_t OpenSocket(void* user, curlsocktype /*purpose*/, curl_sockaddr* address) {
  auto* transfer = static_cast<Transfer*>(user);
  auto ip = IpAddressFromSockaddr(&address->addr, address->addrlen);
  absl::Status verdict = ip.has_value()
                             ? transfer->guard->Check(CurrentHost(transfer->curl), *ip)
                             : absl::PermissionDeniedError(absl::StrCat(
                                   "address family ", address->family, " is not supported"));
  transfer->blocked = verdict;
  if (!verdict.ok()) return CURL_SOCKET_BAD;
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t length = size * count;
  long status = 0;
  curl_easy_getinfo(transfer->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 400) {
    // The status says it all; do not spend time or memory on an error page.
    transfer->stopped_at_error_status = true;
    return 0;
  }
  std::string& body = transfer->response->body;
  const auto limit =
      static_cast<size_t>(std::max<int64_t>(0, transfer->request->max_response_bytes));
  if (body.size() + length > limit) {
    if (transfer->request->truncate_response) {
      body.append(data, limit - body.size());
      transfer->response->body_truncated = true;
    } else {
      transfer->too_large = true;
    }
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  body.append(data, length);
  return length;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* transfer = static_cast<Transfer*>(user);
  if (transfer->request->cancelled && transfer->request->cancelled()) {
    transfer->cancelled = true;
    return 1;
  }
  return 0;
}

absl::Status TooLarge(const HttpRequest& request) {
  return WithErrorReason(
      InvalidField(request.url_field, absl::StrCat("response body is larger than the limit of ",
                                                   request.max_response_bytes, " bytes")),
      kTooLarge, {{"max_bytes", absl::StrCat(request.max_response_bytes)}});
}

// RFC 9110 token characters, the only ones a field name may have.
bool IsTokenChar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  return absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

}  // namespace

absl::Status ValidateHttpHeader(absl::string_view name, absl::string_view value) {
  if (name.empty()) return absl::InvalidArgumentError("HTTP header name is empty");
  for (char c : name) {
    if (!IsTokenChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("HTTP header name ", QuoteForMessage(name, 64),
                       " has a character that is not allowed in a field name"));
    }
  }
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    // CR or LF would end the field and start another (header injection);
    // NUL and the other controls are refused by RFC 9110 too. HTAB is fine.
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat("HTTP header ", QuoteForMessage(name, 64), " has a control character (",
                       QuoteForMessage(absl::string_view(&c, 1)),
                       ") in its value; refusing to send it"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateHttpUrl(absl::string_view field, absl::string_view url) {
  if (url.empty()) return InvalidField(field, "want an http:// or https:// URL, got \"\"");
  if (absl::Status s = CheckFieldLength(field, url, kMaxUrlBytes); !s.ok()) return s;
  CurlUrl parsed(curl_url());
  if (!parsed) return absl::ResourceExhaustedError("out of memory parsing a URL");
  const std::string text(url);
  CURLUcode code =
      curl_url_set(parsed.get(), CURLUPART_URL, text.c_str(), CURLU_NON_SUPPORT_SCHEME);
  if (code != CURLUE_OK) {
    return InvalidField(field, absl::StrCat("not a valid absolute URL (", curl_url_strerror(code),
                                            "): ", QuoteForMessage(url, 512)));
  }
  const std::string scheme = absl::AsciiStrToLower(UrlPart(parsed.get(), CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") {
    return InvalidField(
        field, absl::StrCat("scheme \"", scheme, "\" is not allowed; want http or https, got ",
                            QuoteForMessage(url, 512)));
  }
  if (UrlPart(parsed.get(), CURLUPART_HOST).empty()) {
    return InvalidField(field, absl::StrCat("URL has no host: ", QuoteForMessage(url, 512)));
  }
  return absl::OkStatus();
}

HttpClient::HttpClient(HttpClientOptions options)
    : options_(std::move(options)), guard_(options_.ssrf_policy) {
  static std::once_flag curl_initialised;
  std::call_once(curl_initialised, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

absl::StatusOr<HttpResponse> HttpClient::Fetch(const HttpRequest& request) const {
  if (request.method != "GET" && request.method != "POST") {
    return absl::InvalidArgumentError(
        absl::StrCat("HTTP method ", request.method, " is not supported"));
  }
  if (absl::Status valid = ValidateHttpUrl(request.url_field, request.url); !valid.ok()) {
    return valid;
  }
  const absl::Duration left = request.deadline - absl::Now();
  const absl::Duration total = std::min(options_.total_timeout, left);
  if (total <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("the call's deadline passed before the request was sent");
  }
  const absl::Duration connect = std::min(options_.connect_timeout, total);

  CurlHandle handle(curl_easy_init());
  if (!handle) return absl::ResourceExhaustedError("could not create a libcurl handle");
  CURL* curl = handle.get();

  HttpResponse response;
  Transfer transfer;
  transfer.curl = curl;
  transfer.request = &request;
  transfer.guard = &guard_;
  transfer.response = &response;

  CurlList headers;
  // No "Expect: 100-continue" pause before a POST body.
  headers.reset(curl_slist_append(headers.release(), "Expect:"));
  for (const auto& [name, value] : request.headers) {
    if (absl::Status valid = ValidateHttpHeader(name, value); !valid.ok()) return valid;
    const std::string line = absl::StrCat(name, ": ", value);
    curl_slist* appended = curl_slist_append(headers.get(), line.c_str());
    if (appended == nullptr) return absl::ResourceExhaustedError("out of memory adding a header");
    headers.release();
    headers.reset(appended);
  }

  char error_text[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_PROXY, "");  // never a proxy, not even from the environment
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(connect))));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(total))));
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, &OpenSocket);
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
  if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  if (request.follow_redirects) {
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, static_cast<long>(request.max_redirects));
  }
  if (!request.truncate_response && request.max_response_bytes > 0) {
    // Refuse early when Content-Length already says too much.
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                     static_cast<curl_off_t>(request.max_response_bytes));
  }
  if (request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  }

  const CURLcode code = curl_easy_perform(curl);

  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  char* effective = nullptr;
  if (curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK && effective) {
    response.final_url = effective;
  }
  long redirects = 0;
  curl_easy_getinfo(curl, CURLINFO_REDIRECT_COUNT, &redirects);
  response.redirects = static_cast<int>(redirects);
  curl_off_t total_us = 0;
  curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &total_us);
  response.elapsed = absl::Microseconds(total_us);

  const std::string detail = error_text[0] != '\0' ? error_text : curl_easy_strerror(code);
  switch (code) {
    case CURLE_OK:
      return response;
    case CURLE_WRITE_ERROR:
      if (transfer.too_large) return TooLarge(request);
      if (transfer.stopped_at_error_status || response.body_truncated) return response;
      break;
    case CURLE_FILESIZE_EXCEEDED:
      // Content-Length of an error page is the error page's business.
      if (response.status >= 400) return response;
      return TooLarge(request);
    case CURLE_ABORTED_BY_CALLBACK:
      if (transfer.cancelled)
        return absl::CancelledError("the call was cancelled during the transfer");
      break;
    case CURLE_TOO_MANY_REDIRECTS:
      return WithErrorReason(
          InvalidField(request.url_field, absl::StrCat("more than ", request.max_redirects,
                                                       " redirects from ", QuoteForMessage(request.url, 512))),
          kTooManyRedirects, {{"max_redirects", absl::StrCat(request.max_redirects)}});
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return InvalidField(
          request.url_field,
          absl::StrCat("redirected to an unsupported or malformed URL (", detail, ")"));
    case CURLE_OPERATION_TIMEDOUT:
      if (!transfer.blocked.ok()) return transfer.blocked;
      return absl::DeadlineExceededError(absl::StrCat(
          "timed out fetching ", QuoteForMessage(request.url, 512), " (connect timeout ",
          absl::FormatDuration(connect), ", total ", absl::FormatDuration(total), "): ", detail));
    case CURLE_PEER_FAILED_VERIFICATION:
      // A certificate that does not verify will not verify on a retry either.
      return absl::FailedPreconditionError(
          absl::StrCat("TLS certificate of ", QuoteForMessage(request.url, 512), " did not verify: ",
                       detail));
    default:
      break;
  }
  // A refused address makes libcurl fail to connect: say why.
  if (!transfer.blocked.ok()) return transfer.blocked;
  return absl::UnavailableError(absl::StrCat("fetching ", QuoteForMessage(request.url, 512), " failed: ", detail));
}

}  // namespace conveyor
