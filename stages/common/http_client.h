// One HTTP(S) exchange with libcurl, guarded and bounded, for the download and
// webhook stages.
//
// What every request gets, whatever the caller asks:
//  - http and https only, on the first URL and on every redirect;
//  - no proxy (environment variables such as http_proxy are ignored: through
//    a proxy the guard would see the proxy's address, not the destination's);
//  - the SsrfGuard judges the address libcurl is about to connect to, after
//    DNS, for every connection of every hop (CURLOPT_OPENSOCKETFUNCTION), so
//    no packet is ever sent to a refused address;
//  - a connect timeout and a total timeout, the latter also capped by the
//    caller's deadline;
//  - a response-size limit enforced while streaming;
//  - the transfer is aborted within about a second once `cancelled()` is true.
//
// Codes returned by Fetch (HTTP statuses are NOT errors here; callers map them,
// each with its own policy):
//  INVALID_ARGUMENT   bad URL or scheme (naming `url_field`); a header name
//                     or value with a control character; body larger than
//                     max_response_bytes (reason TOO_LARGE); more redirects than
//                     max_redirects (reason TOO_MANY_REDIRECTS)
//  PERMISSION_DENIED  the guard refused an address (reason DESTINATION_BLOCKED)
//  UNAVAILABLE        DNS failure, connection refused/reset, TLS failure, a
//                     response that broke off
//  DEADLINE_EXCEEDED  connect or total timeout, or the caller's deadline
//  CANCELLED          cancelled() became true
//
// Thread-safe: every Fetch uses its own curl handle.
#ifndef CONVEYOR_STAGES_COMMON_HTTP_CLIENT_H_
#define CONVEYOR_STAGES_COMMON_HTTP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "stages/common/ssrf_guard.h"

namespace conveyor {

struct HttpClientOptions {
  // Time to establish a TCP (and TLS) connection, per hop.
  absl::Duration connect_timeout = absl::Seconds(5);
  // Time for the whole exchange, redirects included.
  absl::Duration total_timeout = absl::Seconds(30);
  // PEM file of CA certificates for https; empty uses the system store.
  std::string ca_file;
  // Sent as User-Agent.
  std::string user_agent = "conveyor/0.1";
  SsrfPolicy ssrf_policy;
};

struct HttpRequest {
  // "GET" or "POST".
  std::string method = "GET";
  std::string url;
  // The request field `url` came from, for error messages ("spec.url").
  std::string url_field = "url";
  // Extra request headers.
  std::vector<std::pair<std::string, std::string>> headers;
  // POST body.
  std::string body;
  // false returns a 3xx response as it is; true follows up to max_redirects
  // redirects, one more being TOO_MANY_REDIRECTS.
  bool follow_redirects = false;
  int max_redirects = 5;
  // Largest response body kept, in bytes.
  int64_t max_response_bytes = 1 << 20;
  // What happens beyond max_response_bytes: false fails with TOO_LARGE; true
  // stops reading and returns the response with the body cut (webhook: the
  // receiver's answer is only informative).
  bool truncate_response = false;
  // The caller's deadline (the gRPC call's); InfiniteFuture for none.
  absl::Time deadline = absl::InfiniteFuture();
  // Polled during the transfer; true aborts it with CANCELLED.
  std::function<bool()> cancelled;
};

struct HttpResponse {
  // Status code of the final response (after redirects).
  int status = 0;
  // Response body; for status >= 400 it is not read (empty).
  std::string body;
  bool body_truncated = false;
  // URL of the final response.
  std::string final_url;
  int redirects = 0;
  // From sending the request to the end of the response.
  absl::Duration elapsed;
};

// ErrorInfo reasons.
inline constexpr absl::string_view kTooLarge = "TOO_LARGE";
inline constexpr absl::string_view kTooManyRedirects = "TOO_MANY_REDIRECTS";

// OK if `url` is an absolute http:// or https:// URL with a host and at most
// kMaxUrlBytes (common/step_specs.h) bytes, as libcurl parses it: stricter
// than CheckHttpUrl, and also applied to every redirect; else INVALID_ARGUMENT naming `field` (reason
// FIELD_TOO_LONG for a long one). The address is judged later, after DNS.
absl::Status ValidateHttpUrl(absl::string_view field, absl::string_view url);

// OK if `name` is an RFC 9110 token and `value` has no control character
// other than HTAB (no CR, LF or NUL: they would let a value end the field and
// inject headers). INVALID_ARGUMENT otherwise. Fetch checks every header.
absl::Status ValidateHttpHeader(absl::string_view name, absl::string_view value);

class HttpClient {
 public:
  // Initialises libcurl once per process: construct the first client in
  // main(), before other threads start.
  explicit HttpClient(HttpClientOptions options);

  absl::StatusOr<HttpResponse> Fetch(const HttpRequest& request) const;

  const HttpClientOptions& options() const { return options_; }

 private:
  HttpClientOptions options_;
  SsrfGuard guard_;
};

}  // namespace conveyor

#endif  // CONVEYOR_STAGES_COMMON_HTTP_CLIENT_H_
