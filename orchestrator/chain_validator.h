// Submit-time checks of a chain: field limits (from the proto comments) and
// the type flow between steps. Nothing is stored for a chain that fails here.
//
// Data kinds flow NONE -> download -> IMAGE; resize and filter IMAGE -> IMAGE;
// upload IMAGE -> STORED_OBJECT; webhook passes any non-NONE kind through.
// Every error is INVALID_ARGUMENT from InvalidField(), naming the field, e.g.
//   spec.steps[2].resize: needs an image but step 1 (upload) produces a stored object
#ifndef CONVEYOR_ORCHESTRATOR_CHAIN_VALIDATOR_H_
#define CONVEYOR_ORCHESTRATOR_CHAIN_VALIDATOR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "conveyor/v1/chain.pb.h"
#include "stages/common/stage_kind.h"

namespace conveyor::orchestrator {

inline constexpr int kMaxSteps = 16;
inline constexpr int kMaxLabels = 32;
inline constexpr int kMaxIdempotencyKeyChars = 128;

// `has_inline_source`: image bytes came with the request (then the first step
// must not be a download; otherwise it must be one).
absl::Status ValidateChainSpec(const conveyor::v1::ChainSpec& spec, bool has_inline_source);

// Up to 128 chars, printable ASCII without '|' (it separates stored fields).
absl::Status ValidateIdempotencyKey(absl::string_view key);


}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_CHAIN_VALIDATOR_H_
