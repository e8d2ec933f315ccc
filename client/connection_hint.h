// What to tell a user whose call failed UNAVAILABLE because the connection
// never got through TLS: which flag to add or change. gRPC reports a failed
// handshake only as text inside the UNAVAILABLE message ("Ssl handshake
// failed: ... certificate verify failed", "Socket closed", ...), so the hint
// is chosen from that text. Pure; no gRPC.
#ifndef CONVEYOR_CLIENT_CONNECTION_HINT_H_
#define CONVEYOR_CLIENT_CONNECTION_HINT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace conveyor::client {

// One line starting "hint: " for an UNAVAILABLE `message` that looks like a
// TLS or plaintext mismatch; "" for any other message (a server that is
// simply down keeps gRPC's own words).
std::string ConnectionHint(absl::string_view message);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_CONNECTION_HINT_H_
