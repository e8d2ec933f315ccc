#include "orchestrator/dashboard/http_access.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "orchestrator/auth/scope_check.h"

namespace conveyor::orchestrator::dashboard {

std::string CookieValue(absl::string_view cookie_header, absl::string_view name) {
  for (absl::string_view part : absl::StrSplit(cookie_header, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::ConsumePrefix(&part, name) && absl::ConsumePrefix(&part, "=")) {
      return std::string(part);
    }
  }
  return "";
}

auth::Credentials CredentialsOf(const HttpCredentials& http) {
  auth::Credentials credentials;
  if (!http.authorization.empty()) {
    credentials.authorization = http.authorization;
  } else if (std::string token = CookieValue(http.cookie, kSessionCookie); !token.empty()) {
    credentials.authorization.push_back(absl::StrCat("Bearer ", token));
  }
  // No client certificate: the dashboard does not ask browsers for one
  // (docs/security.md, "Dashboard").
  return credentials;
}

absl::StatusOr<Caller> Authorize(const auth::Authenticator& authenticator,
                                 const HttpCredentials& http, Scope needed) {
  absl::StatusOr<Caller> caller = authenticator.Authenticate(CredentialsOf(http));
  if (!caller.ok()) return caller.status();
  if (absl::Status allowed = auth::CheckScope(*caller, needed); !allowed.ok()) return allowed;
  return caller;
}

absl::Status CheckCookieToken(absl::string_view token) {
  if (token.empty()) return absl::InvalidArgumentError("token: empty");
  if (token.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("token: ", token.size(), " bytes, want at most ", kMaxTokenBytes));
  }
  for (unsigned char c : token) {
    // RFC 6265 cookie-octet: visible ASCII but for '"', ',', ';' and '\'.
    const bool octet = c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
    if (!octet) {
      // The token is a secret: say what is wrong, never echo it.
      return absl::InvalidArgumentError(
          "token: has a character a bearer token cannot have (space, quote, comma, semicolon, "
          "backslash or non-ASCII)");
    }
  }
  return absl::OkStatus();
}

namespace {

std::string CookieAttributes(bool secure) {
  return absl::StrCat("; Path=/; HttpOnly; SameSite=Strict", secure ? "; Secure" : "");
}

}  // namespace

std::string SessionCookieHeader(absl::string_view token, bool secure) {
  // A session cookie (no Max-Age): it ends with the browser session, and a
  // token's own expiry (JWT `exp`) still applies at every request.
  return absl::StrCat(kSessionCookie, "=", token, CookieAttributes(secure));
}

std::string ClearedSessionCookieHeader(bool secure) {
  return absl::StrCat(kSessionCookie, "=", CookieAttributes(secure), "; Max-Age=0");
}

absl::Status CheckCsrf(absl::string_view csrf_header, absl::string_view origin,
                       absl::string_view host) {
  if (csrf_header != "1") {
    return absl::PermissionDeniedError(
        absl::StrCat("this request changes something and needs the header ", kCsrfHeader,
                     ": 1 (the dashboard's pages send it)"));
  }
  if (origin.empty()) return absl::OkStatus();
  absl::string_view rest = origin;
  if (!absl::ConsumePrefix(&rest, "https://") && !absl::ConsumePrefix(&rest, "http://")) {
    return absl::PermissionDeniedError("Origin: not an http(s) origin");
  }
  if (host.empty() || !absl::EqualsIgnoreCase(rest, host)) {
    return absl::PermissionDeniedError("Origin: another site's page cannot act here");
  }
  return absl::OkStatus();
}

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

}  // namespace conveyor::orchestrator::dashboard
