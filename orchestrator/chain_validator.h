// Submit-time checks of a chain: field limits (from the proto comments) and
// the type flow between steps. Nothing is stored for a chain that fails here.
//
// Data kinds flow NONE -> download -> IMAGE; resize and filter IMAGE -> IMAGE;
// upload IMAGE -> STORED_OBJECT; webhook passes any non-NONE kind through.
// Every error is INVALID_ARGUMENT from InvalidField(), naming the field, e.g.
//   spec.steps[2].resize: needs an image but step 1 (upload) produces a stored object
//
// Size limits are checked before anything else looks at a value, and a
// refusal never echoes a value that may be large or secret: it names the
// field, the size and the limit (a short value is shown C-escaped, a URL only
// by its scheme, since URLs can carry credentials). The limits are listed
// with their reasons in docs/limits.md ("## Orchestrator").
#ifndef CONVEYOR_ORCHESTRATOR_CHAIN_VALIDATOR_H_
#define CONVEYOR_ORCHESTRATOR_CHAIN_VALIDATOR_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "conveyor/v1/chain.pb.h"
#include "google/protobuf/map.h"
#include "google/protobuf/timestamp.pb.h"
#include "common/stage_registry.h"
#include "common/step_specs.h"

namespace conveyor::orchestrator {

// The per-stage limits and the message helpers live with the stage specs
// (common/step_specs.h); these names stay for the orchestrator's callers.
using ::conveyor::kMaxDestinationBytes;
using ::conveyor::kMaxFilterOps;
using ::conveyor::kMaxKeyTemplateBytes;
using ::conveyor::kMaxUrlBytes;
using ::conveyor::Preview;

inline constexpr int kMaxSteps = 16;
inline constexpr int kMaxLabels = 32;
inline constexpr size_t kMaxLabelKeyChars = 63;
inline constexpr size_t kMaxLabelValueBytes = 255;
inline constexpr size_t kMaxIdempotencyKeyChars = 128;
// There are 16 non-OK codes, so a longer list can only repeat them.
inline constexpr int kMaxRetryableCodes = 16;
// The whole spec, serialized, after unknown fields were dropped. Legal specs
// stay below ~150 KiB (16 steps of 8 KiB URLs plus 32 labels), so this only
// bounds fields added later.
inline constexpr size_t kMaxSpecBytes = 256 * 1024;
// Request-level fields (checked by ChainApi).
inline constexpr size_t kMaxChainNameBytes = 7 + 64;  // "chains/" + id
inline constexpr size_t kMaxPageTokenBytes = 256;
inline constexpr size_t kMaxEventIdBytes = 41;  // "<u64>-<u64>"

// `has_inline_source`: image bytes came with the request (then the first step
// must not be a download; otherwise it must be one).
absl::Status ValidateChainSpec(const conveyor::v1::ChainSpec& spec, bool has_inline_source);

// Up to 128 chars, printable ASCII without '|' (it separates stored fields).
absl::Status ValidateIdempotencyKey(absl::string_view key);

// At most kMaxLabels; keys 1..63 chars of [a-z0-9_.-]; values up to 255
// bytes without control characters. `field` is "spec.labels" or "labels".
absl::Status ValidateLabels(absl::string_view field,
                            const google::protobuf::Map<std::string, std::string>& labels);

// A google.protobuf.Timestamp within 0001-01-01..9999-12-31 with nanos in
// 0..999999999 (the range the type documents).
absl::Status ValidateTimestamp(absl::string_view field, const google::protobuf::Timestamp& t);


}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_CHAIN_VALIDATOR_H_
