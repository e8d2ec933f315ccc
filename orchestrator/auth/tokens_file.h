// The orchestrator's --tokens-file: which credentials are which caller.
//
//   # comment; blank lines are ignored
//   sha256:<64 lowercase hex digits>  <principal> <tenant> <scopes>
//   cert:<identity>                   <principal> <tenant> <scopes>
//
// `sha256:` is the SHA-256 of a bearer token (`printf %s "$token" |
// sha256sum`): the file never holds a token, so reading it does not give
// one away. `cert:` is a verified mTLS client certificate's identity, a SAN
// DNS or URI name or the CN, as gRPC's AuthContext exposes them (only with
// --tls-client-ca: without it no client certificate is asked for). tenant
// is a tenant name or "*" (every tenant, orchestrator/caller.h); scopes are
// comma-separated from chains.submit, chains.read, chains.cancel, admin.
//
// Refused, naming file:line: a malformed line, an unknown scope, a bad
// tenant or principal, a credential listed twice, and the digest of a
// placeholder (common/secret_file.h) or of the empty string, a token anyone
// can guess. Messages never contain a digest or a token.
#ifndef CONVEYOR_ORCHESTRATOR_AUTH_TOKENS_FILE_H_
#define CONVEYOR_ORCHESTRATOR_AUTH_TOKENS_FILE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "orchestrator/caller.h"

namespace conveyor::orchestrator::auth {

// The parsed file. Immutable; thread-safe.
class TokenTable {
 public:
  // The caller whose token this is, if any. Hashes `token` and compares it
  // with every digest in constant time (CRYPTO_memcmp), without stopping at
  // a match: how long it takes says nothing about which digest, if any,
  // shares a prefix with the token's.
  std::optional<Caller> FindToken(absl::string_view token) const;

  // The caller of the first of `identities` (a certificate's names, most
  // specific first) that a cert: line lists.
  std::optional<Caller> FindCertificate(absl::Span<const std::string> identities) const;

  size_t token_count() const { return tokens_.size(); }
  size_t certificate_count() const { return certificates_.size(); }

 private:
  friend absl::StatusOr<TokenTable> ParseTokensFile(absl::string_view text, absl::string_view path);
  struct TokenEntry {
    std::string digest_hex;  // 64 lowercase hex digits
    Caller caller;
  };
  std::vector<TokenEntry> tokens_;
  std::map<std::string, Caller> certificates_;
};

// Parses the file's text; `path` is only for messages ("<path>:<line>: ...").
// INVALID_ARGUMENT for any bad line, FAILED_PRECONDITION for a file without
// a single credential.
absl::StatusOr<TokenTable> ParseTokensFile(absl::string_view text, absl::string_view path);

// Reads (common/secret_file.h: a warning when other users may read it) and
// parses `path`.
absl::StatusOr<TokenTable> ReadTokensFile(const std::string& path);

// A principal as the tokens file and JWT `sub` may give it: 1..256 bytes,
// printable ASCII without spaces, quotes or backslashes (it goes into log
// lines and the audit trail of chains).
bool IsPrincipalName(absl::string_view name);

}  // namespace conveyor::orchestrator::auth

#endif  // CONVEYOR_ORCHESTRATOR_AUTH_TOKENS_FILE_H_
