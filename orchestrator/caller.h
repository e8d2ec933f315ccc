// Who calls the Orchestrator: the principal the authenticator
// (orchestrator/auth/authenticator.h) established at the gRPC edge (a
// bearer token, a JWT or an mTLS client certificate),
// the tenant its chains belong to, and what it may do. ChainApi takes one on
// every call: it scopes what a caller sees to its tenant and records it in
// the chain and its events (the audit trail). Plain data, no gRPC.
#ifndef CONVEYOR_ORCHESTRATOR_CALLER_H_
#define CONVEYOR_ORCHESTRATOR_CALLER_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/step_context.h"

namespace conveyor::orchestrator {

// What a caller may do. Scope names are as they stand in the tokens file and
// in JWT `scope` claims.
enum class Scope : uint8_t {
  kSubmit = 1 << 0,  // "chains.submit": SubmitChain, StreamSubmitChain
  kRead = 1 << 1,    // "chains.read": GetChain, ListChains, WatchChain, GetSystemStatus
  kCancel = 1 << 2,  // "chains.cancel": CancelChain(s), RetryChain(s)
  kAdmin = 1 << 3,   // "admin": PurgeChains and system status details (of its tenant;
                     // of every tenant for a caller of tenant kAllTenants)
};

// A set of scopes.
class Scopes {
 public:
  Scopes() = default;
  static Scopes All() { return Scopes(0xf); }
  Scopes& Add(Scope scope) {
    bits_ |= static_cast<uint8_t>(scope);
    return *this;
  }
  bool Has(Scope scope) const { return (bits_ & static_cast<uint8_t>(scope)) != 0; }
  bool operator==(const Scopes& other) const { return bits_ == other.bits_; }

 private:
  explicit Scopes(uint8_t bits) : bits_(bits) {}
  uint8_t bits_ = 0;
};

// The tenant of callers that act for every tenant (system operators): they
// see and act on all chains, and own none (they cannot submit).
inline constexpr absl::string_view kAllTenants = "*";
// The tenant of chains recorded before tenants existed, and of the caller
// --allow-anonymous admits.
inline constexpr absl::string_view kDefaultTenant = "default";

// A tenant name as common/step_context.h defines it (1..64 of
// [A-Za-z0-9_-]: it is part of store keys), or kAllTenants.
inline bool IsTenantName(absl::string_view name) {
  return name == kAllTenants || conveyor::IsTenantName(name);
}

struct Caller {
  // Who: e.g. "alice" (a tokens-file line, for a token or a client
  // certificate's cert: identity), the JWT `sub`, or "anonymous".
  std::string principal;
  // Whose chains: every chain records the tenant that submitted it, and a
  // caller sees only its own tenant's chains; kAllTenants sees every one.
  std::string tenant;
  Scopes scopes;

  bool Has(Scope scope) const { return scopes.Has(scope); }
  bool all_tenants() const { return tenant == kAllTenants; }
  // The tenant its lists, purges and bulk actions cover: its own, or every
  // tenant ("") for kAllTenants.
  std::string scope_tenant() const { return all_tenants() ? "" : tenant; }
  // Whether this caller may see a chain of `chain_tenant` ("" is a chain
  // from before tenants: kDefaultTenant's).
  bool Sees(absl::string_view chain_tenant) const {
    if (all_tenants()) return true;
    return tenant == (chain_tenant.empty() ? kDefaultTenant : chain_tenant);
  }
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_CALLER_H_
