// Callers for tests that call ChainApi directly, as the authenticator would
// establish them at the gRPC edge.
#ifndef CONVEYOR_TESTS_TESTING_CALLERS_H_
#define CONVEYOR_TESTS_TESTING_CALLERS_H_

#include <string>

#include "orchestrator/caller.h"

namespace conveyor::orchestrator::testing {

// A user of `tenant` with every chain scope (submit, read, cancel), not admin.
inline Caller TenantUser(std::string tenant = "default", std::string principal = "user") {
  return {std::move(principal), std::move(tenant),
          Scopes().Add(Scope::kSubmit).Add(Scope::kRead).Add(Scope::kCancel)};
}

// An operator of the whole system: every scope, every tenant.
inline Caller SystemAdmin() { return {"admin", std::string(kAllTenants), Scopes::All()}; }

}  // namespace conveyor::orchestrator::testing

#endif  // CONVEYOR_TESTS_TESTING_CALLERS_H_
