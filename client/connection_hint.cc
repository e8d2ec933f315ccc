#include "client/connection_hint.h"

#include <initializer_list>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace conveyor::client {
namespace {

bool ContainsAny(absl::string_view text, std::initializer_list<absl::string_view> needles) {
  for (absl::string_view needle : needles) {
    if (absl::StrContains(text, needle)) return true;
  }
  return false;
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

}  // namespace conveyor::client
