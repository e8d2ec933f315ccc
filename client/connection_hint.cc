#include "client/connection_hint.h"

#include <initializer_list>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/new_token.h"

namespace conveyor::client {
namespace {

bool ContainsAny(absl::string_view text, std::initializer_list<absl::string_view> needles) {
  for (absl::string_view needle : needles) {
    if (absl::StrContains(text, needle)) return true;
  }
  return false;
}

// A byte that may continue a scope name: "chains.read" is not found in
// "chains.readers".
bool IsScopeChar(char c) { return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-'; }

// The first of kTokenScopes that `message` names as a whole word, or "".
absl::string_view NamedScope(absl::string_view message) {
  absl::string_view first;
  size_t first_at = absl::string_view::npos;
  for (absl::string_view scope : kTokenScopes) {
    for (size_t at = message.find(scope); at != absl::string_view::npos;
         at = message.find(scope, at + 1)) {
      const size_t end = at + scope.size();
      if ((at == 0 || !IsScopeChar(message[at - 1])) &&
          (end == message.size() || !IsScopeChar(message[end]))) {
        if (at < first_at) {
          first = scope;
          first_at = at;
        }
        break;
      }
    }
  }
  return first;
}

// The default file for hints: the path looked at, or its usual spelling.
std::string DefaultFileForHint(const TokenSource& sent) {
  return sent.origin == TokenOrigin::kNone && !sent.path.empty() ? sent.path
                                                                 : "~/.config/conveyor/token";
}

}  // namespace

std::string ConnectionHint(absl::string_view message) {
  const std::string text = absl::AsciiStrToLower(message);
  // The order matters: a failed verification also says "handshake failed".
  if (ContainsAny(text, {"peer name", "not in peer certificate", "hostname mismatch",
                         "hostname verification", "host name", "ip address mismatch"})) {
    return "hint: the server's certificate does not carry the name dialled; pass "
           "--tls-server-name <a name in its certificate> (CONVEYOR_TLS_SERVER_NAME)";
  }
  if (ContainsAny(text, {"certificate verify failed", "certificate_verify_failed",
                         "unable to get local issuer", "self signed certificate",
                         "self-signed certificate", "unknown ca"})) {
    return "hint: the server's certificate is not signed by a CA this client trusts; pass "
           "--tls-ca <its CA's PEM file> (CONVEYOR_TLS_CA)";
  }
  if (ContainsAny(text, {"certificate required", "certificate_required", "peer did not return a "
                         "certificate", "alert handshake failure", "bad certificate"})) {
    return "hint: the server requires a client certificate (mTLS); pass --tls-cert and "
           "--tls-key (CONVEYOR_TLS_CERT, CONVEYOR_TLS_KEY) signed by a CA it trusts";
  }
  if (ContainsAny(text, {"wrong version number", "packet length too long", "http request",
                         "record layer failure", "unknown protocol"})) {
    return "hint: the server does not speak TLS; pass --insecure (CONVEYOR_INSECURE=1) only if "
           "plaintext is meant, else turn TLS on at the server";
  }
  if (ContainsAny(text, {"handshake", "ssl", "tls", "socket closed", "connection reset",
                         "end of file", "eof"})) {
    return "hint: the connection closed before any answer, as when TLS is expected on one side "
           "only: pass --tls-ca (and --tls-cert/--tls-key for mTLS) to a TLS server, "
           "--insecure to a plaintext one";
  }
  return "";
}

std::string UnauthenticatedHint(const TokenSource& sent) {
  if (sent.origin == TokenOrigin::kNone) {
    return absl::StrCat(
        "hint: no token was sent, and the server wants one: pass --token, set CONVEYOR_TOKEN, "
        "pass --token-file (CONVEYOR_TOKEN_FILE), or save it in ",
        DefaultFileForHint(sent), " (mode 0600); `conveyor token new` makes one");
  }
  return absl::StrCat("hint: the server did not accept the token from ", DescribeTokenSource(sent),
                      " (unknown, revoked or expired): check that the server's tokens file "
                      "has its sha256 line (`conveyor token new` prints it), or give another");
}

std::string PermissionDeniedHint(absl::string_view message, const TokenSource& sent) {
  const absl::string_view scope = NamedScope(message);
  if (scope.empty()) return "";
  if (sent.origin == TokenOrigin::kNone) {
    // Without a token the server took the caller for anonymous, or for the
    // client certificate's cert: line.
    return absl::StrCat(
        "hint: no token was sent, and the caller the server took this for "
        "(anonymous, or your client certificate) lacks scope ",
        scope, ": pass a token that has it (--token, CONVEYOR_TOKEN, --token-file or ",
        DefaultFileForHint(sent), ")");
  }
  return absl::StrCat("hint: the token from ", DescribeTokenSource(sent), " lacks scope ", scope,
                      ": add ", scope,
                      " to the scopes (last field) of its line in the server's tokens file, "
                      "or use a token that has it");
}

}  // namespace conveyor::client
