// Scope names as callers write them (tokens file, JWT `scope`/`scp` claims,
// --anonymous-scopes) and the check of a caller's scopes against what an RPC
// needs. Pure functions, thread-safe, no gRPC.
#ifndef CONVEYOR_ORCHESTRATOR_AUTH_SCOPE_CHECK_H_
#define CONVEYOR_ORCHESTRATOR_AUTH_SCOPE_CHECK_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "orchestrator/caller.h"

namespace conveyor::orchestrator::auth {

// "chains.submit", "chains.read", "chains.cancel" or "admin".
absl::string_view ScopeName(Scope scope);

// The scope named `name`; INVALID_ARGUMENT naming it and the known ones.
absl::StatusOr<Scope> ParseScope(absl::string_view name);

// "chains.submit,chains.read": names separated by `separator`. Strict (the
// tokens file, flags): an unknown or empty name is INVALID_ARGUMENT.
absl::StatusOr<Scopes> ParseScopeList(absl::string_view list, char separator = ',');

// The scopes among `names` this server knows; others are skipped, since an
// identity provider's tokens carry scopes of other services too ("openid").
Scopes KnownScopes(absl::string_view names, char separator = ' ');

// "chains.submit,chains.read" in the order of Scope; "no scope" for none.
std::string DescribeScopes(Scopes scopes);

// OK if `caller` has `needed`; PERMISSION_DENIED otherwise, naming the scope
// and what the principal has:
//   this call needs scope "chains.cancel"; principal "bob" has chains.read
absl::Status CheckScope(const Caller& caller, Scope needed);

}  // namespace conveyor::orchestrator::auth

#endif  // CONVEYOR_ORCHESTRATOR_AUTH_SCOPE_CHECK_H_
