// Checks on StepContext, the part of every stage request that says which
// chain, step and tenant a call belongs to.
//
// Every stage worker checks it before any work (CheckStepContext, run by the
// unary runner, common/unary_call.h): the orchestrator only ever sends
// "chains/<32 hex digits>" and a tenant name, but a worker also serves direct
// calls, and a chain name with CR/LF, '/' or ".." would inject headers
// (webhook-id) or escape a key (upload's object key). Pure functions, no gRPC.
#ifndef CONVEYOR_COMMON_STEP_CONTEXT_H_
#define CONVEYOR_COMMON_STEP_CONTEXT_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "conveyor/v1/stages.pb.h"

namespace conveyor {

// Longest chain id (the part after "chains/") accepted, in bytes.
inline constexpr size_t kMaxChainIdBytes = 64;

// The id of context.chain: "" for an empty chain (a direct call), "<id>" for
// "chains/<id>" where id is 1..kMaxChainIdBytes of [A-Za-z0-9_-]. Otherwise
// INVALID_ARGUMENT naming context.chain (reason INVALID_CHAIN_NAME), with the
// value quoted, cut and control bytes made visible.
absl::StatusOr<std::string> ChainIdOfContext(const v1::StepContext& context);

inline constexpr absl::string_view kReasonInvalidChainName = "INVALID_CHAIN_NAME";

// Longest tenant name accepted, in bytes.
inline constexpr size_t kMaxTenantBytes = 64;

// A tenant name: 1..kMaxTenantBytes of [A-Za-z0-9_-], the chain id's
// alphabet (e.g. "default", "acme", "team-7"). Tenants key the webhook
// secrets file and stand in log lines, so nothing else is let through.
bool IsTenantName(absl::string_view tenant);

inline constexpr absl::string_view kReasonInvalidTenantName = "INVALID_TENANT_NAME";

// OK if context.chain passes ChainIdOfContext and context.tenant is empty (a
// direct call) or IsTenantName; else INVALID_ARGUMENT naming the field
// (context.chain: reason INVALID_CHAIN_NAME; context.tenant: reason
// INVALID_TENANT_NAME), the value quoted as ChainIdOfContext does.
absl::Status CheckStepContext(const v1::StepContext& context);

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_STEP_CONTEXT_H_
