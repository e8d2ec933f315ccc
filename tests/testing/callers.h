// Callers for tests that call ChainApi directly, as the authenticator would
// establish them at the gRPC edge.
#ifndef CONVEYOR_TESTS_TESTING_CALLERS_H_
#define CONVEYOR_TESTS_TESTING_CALLERS_H_

#include <string>

#include "orchestrator/caller.h"

namespace conveyor::testing {

// A user of `tenant` with every chain scope (submit, read, cancel), not admin.
inline orchestrator::Caller TenantUser(std::string tenant = "default",
                                       std::string principal = "user") {
  using orchestrator::Scope;
  return {std::move(principal), std::move(tenant),
          orchestrator::Scopes().Add(Scope::kSubmit).Add(Scope::kRead).Add(Scope::kCancel)};
}

// An operator of the whole system: every scope, every tenant.
inline orchestrator::Caller SystemAdmin() {
  return {"admin", std::string(orchestrator::kAllTenants), orchestrator::Scopes::All()};
}

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_CALLERS_H_
