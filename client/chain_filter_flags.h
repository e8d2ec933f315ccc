// The filter flags `list`, `retry` and `cancel` share (--state, --label,
// --stage, --error-reason, time ranges) and the confirmation prompt of the
// bulk verbs, as pure functions: no I/O, no gRPC, so
// tests/client/chain_filter_flags_test.cc checks them exactly.
#ifndef CONVEYOR_CLIENT_CHAIN_FILTER_FLAGS_H_
#define CONVEYOR_CLIENT_CHAIN_FILTER_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "conveyor/v1/orchestrator.pb.h"

namespace conveyor::client {

// As typed; empty means "not given".
struct FilterFlags {
  std::string state;                // --state failed
  std::vector<std::string> labels;  // --label k=v (repeatable)
  std::string stage;                // --stage resize
  std::string error_reason;         // --error-reason UNAVAILABLE
  std::string since;                // --since / --created-after: time or duration ago
  std::string before;               // --before / --created-before
  std::string ended_after;          // --ended-after
  std::string ended_before;         // --ended-before
};

// True if no filter flag was given.
bool FilterFlagsEmpty(const FilterFlags& flags);

// A stage's name (common/stage_registry.h: "resize", ...; any case).
absl::StatusOr<conveyor::v1::StageKind> ParseStageFlag(absl::string_view flag,
                                                       absl::string_view text);

// The flags as a ChainFilter; durations in time flags count back from `now`.
// INVALID_ARGUMENT naming the flag for a bad value.
absl::StatusOr<conveyor::v1::ChainFilter> BuildChainFilter(const FilterFlags& flags,
                                                           absl::Time now);

// The same filter on a ListChainsRequest.
void ApplyToListRequest(const conveyor::v1::ChainFilter& filter,
                        conveyor::v1::ListChainsRequest& request);

// "Retry 37 chains? [y/N] " (verb capitalised; "1 chain").
std::string ConfirmQuestion(absl::string_view verb, int64_t count);

// True for "y" / "yes" (any case, surrounding spaces ignored); anything else,
// an empty line included, is no.
bool IsYes(absl::string_view answer);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_CHAIN_FILTER_FLAGS_H_
