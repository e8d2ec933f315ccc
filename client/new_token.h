// `conveyor token new`'s parts: a fresh random token, and the line of the
// orchestrator's tokens file that admits it,
//   sha256:<64 lowercase hex of the token> <principal> <tenant> <scope,scope>
// The server keeps only the digest, so the line may travel (a ticket, a
// chat) where the token must not. Thread-safe.
#ifndef CONVEYOR_CLIENT_NEW_TOKEN_H_
#define CONVEYOR_CLIENT_NEW_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace conveyor::client {

// Bytes of randomness in a token: 256 bits, beyond guessing.
inline constexpr int kNewTokenBytes = 32;

// The scopes the orchestrator checks (docs/security.md), comma-separated
// in the tokens file.
inline constexpr absl::string_view kTokenScopes[] = {"chains.submit", "chains.read",
                                                     "chains.cancel", "admin"};

// kNewTokenBytes from OpenSSL's CSPRNG as lowercase hex. INTERNAL if
// RAND_bytes fails (an unseeded generator): no token beats a weak one.
absl::StatusOr<std::string> NewToken();

// Who a tokens-file line admits.
struct TokenOwner {
  std::string principal;  // the caller's name in the server's logs
  std::string tenant;     // whose chains it may see; `*`: every tenant's
  std::string scopes;     // kTokenScopes, comma-separated
};

// "sha256:<hex of token> principal tenant scopes" (no newline).
// INVALID_ARGUMENT naming the flag (--principal, --tenant, --scopes) for an
// empty value or one with whitespace (the file's separator), a principal
// over 256 bytes or with a quote or backslash, a tenant outside the
// orchestrator's rule (1..64 of [A-Za-z0-9_-], or `*`), and a
// scope outside kTokenScopes or given twice: a typo would mint a token
// that can do nothing.
absl::StatusOr<std::string> TokensFileLine(absl::string_view token, const TokenOwner& owner);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_NEW_TOKEN_H_
