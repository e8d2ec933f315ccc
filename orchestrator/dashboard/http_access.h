// Who a dashboard request is and what it may do, apart from HTTP: the same
// Authenticator and scope check as the gRPC API (orchestrator/auth/), with
// the browser's ways of carrying a token. No cpp-httplib: the adapter
// (dashboard_server.cc) copies the headers into an HttpCredentials.
//
// A request's token comes from its `Authorization: Bearer <token>` header
// (curl, scripts) or, without one, from the session cookie the login form
// sets (browsers: EventSource cannot send headers, the cookie it can).
// The cookie is HttpOnly (no script reads it) and SameSite=Strict (no other
// site's page makes the browser send it), Secure over TLS.
//
// Requests that change something (POST) must also carry the header
// `X-Conveyor-Dashboard: 1`: a cross-site form or image cannot set a custom
// header, and a cross-site fetch that does needs a CORS preflight this
// server never answers; an `Origin` that is not this server's is refused.
// Together with SameSite=Strict that makes the actions CSRF-safe.
#ifndef CONVEYOR_ORCHESTRATOR_DASHBOARD_HTTP_ACCESS_H_
#define CONVEYOR_ORCHESTRATOR_DASHBOARD_HTTP_ACCESS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "orchestrator/auth/authenticator.h"
#include "orchestrator/caller.h"

namespace conveyor::orchestrator::dashboard {

// The session cookie's name.
inline constexpr absl::string_view kSessionCookie = "conveyor_session";
// The header every POST must carry (value "1").
inline constexpr absl::string_view kCsrfHeader = "X-Conveyor-Dashboard";
// Longest token accepted from a cookie or the login form (JWTs of a few KB
// fit; browsers keep cookies up to 4 KB).
inline constexpr size_t kMaxTokenBytes = 3800;

// What an HTTP request presents, copied from its headers ("" when absent).
struct HttpCredentials {
  std::vector<std::string> authorization;  // every Authorization header
  std::string cookie;                      // Cookie
};

// The value of cookie `name` in a Cookie header ("a=1; b=2"), "" if absent.
std::string CookieValue(absl::string_view cookie_header, absl::string_view name);

// The Authenticator's Credentials for `http`: the Authorization headers if
// there are any (they alone decide, as over gRPC: more than one is refused),
// else "Bearer <cookie>" if
// the session cookie is set, else none (anonymous, if allowed).
auth::Credentials CredentialsOf(const HttpCredentials& http);

// Authenticates `http` and checks `needed`: the Caller, or UNAUTHENTICATED /
// PERMISSION_DENIED in the gRPC API's words.
absl::StatusOr<Caller> Authorize(const auth::Authenticator& authenticator,
                                 const HttpCredentials& http, Scope needed);

// INVALID_ARGUMENT unless `token` can be a session cookie's value: 1..
// kMaxTokenBytes of RFC 6265 cookie-octets (what bearer tokens and JWTs are).
absl::Status CheckCookieToken(absl::string_view token);

// The Set-Cookie value that starts a session with `token` (checked by
// CheckCookieToken), and the one that ends it. `secure` over TLS.
std::string SessionCookieHeader(absl::string_view token, bool secure);
std::string ClearedSessionCookieHeader(bool secure);

// OK if a state-changing request may proceed: `csrf_header` (the value of
// kCsrfHeader) is "1", and `origin` (the Origin header) is empty or names
// `host` (the Host header) over http:// or https://. PERMISSION_DENIED
// naming what is missing otherwise.
absl::Status CheckCsrf(absl::string_view csrf_header, absl::string_view origin,
                       absl::string_view host);

// The HTTP status for a call's outcome: OK 200, INVALID_ARGUMENT and
// OUT_OF_RANGE 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND
// 404, ALREADY_EXISTS, ABORTED and FAILED_PRECONDITION 409,
// RESOURCE_EXHAUSTED 429, CANCELLED 499, UNIMPLEMENTED 501, UNAVAILABLE 503,
// DEADLINE_EXCEEDED 504, anything else 500 (as google.rpc.Code documents).
int HttpStatusFor(absl::StatusCode code);

}  // namespace conveyor::orchestrator::dashboard

#endif  // CONVEYOR_ORCHESTRATOR_DASHBOARD_HTTP_ACCESS_H_
