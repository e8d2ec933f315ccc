// What to tell a user whose call failed for want of the right credentials:
// which flag, variable or file to add or change.
// - UNAVAILABLE because the connection never got through TLS. gRPC reports a
//   failed handshake only as text inside the UNAVAILABLE message ("Ssl
//   handshake failed: ... certificate verify failed", "Socket closed", ...),
//   so the hint is chosen from that text.
// - UNAUTHENTICATED: the token sent (its source, never the token) or that
//   there was none, and how to give one.
// - PERMISSION_DENIED: the scope the server named, which the token lacks.
// Pure; no gRPC.
#ifndef CONVEYOR_CLIENT_CONNECTION_HINT_H_
#define CONVEYOR_CLIENT_CONNECTION_HINT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "client/token_source.h"

namespace conveyor::client {

// One line starting "hint: " for an UNAVAILABLE `message` that looks like a
// TLS or plaintext mismatch; "" for any other message (a server that is
// simply down keeps gRPC's own words).
std::string ConnectionHint(absl::string_view message);

// One "hint: " line for an UNAUTHENTICATED call made with the token from
// `sent` (kNone: without one).
std::string UnauthenticatedHint(const TokenSource& sent);

// One "hint: " line for a PERMISSION_DENIED `message` that names one of
// kTokenScopes (new_token.h); "" when it names none (the server refused
// for another reason, and its words say which).
std::string PermissionDeniedHint(absl::string_view message, const TokenSource& sent);
}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_CONNECTION_HINT_H_
