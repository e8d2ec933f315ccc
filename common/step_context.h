// Checks on StepContext, the part of every stage request that says which
// chain and step a call belongs to.
//
// Workers that put the chain into something outside the process (upload: the
// object key; webhook: the webhook-id header) must validate it first: the
// orchestrator only ever sends "chains/<32 hex digits>", but a worker also
// serves direct calls, and a chain name with CR/LF, '/' or ".." would inject
// headers or escape a key. Pure functions, no gRPC.
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

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_STEP_CONTEXT_H_
