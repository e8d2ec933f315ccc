// Parsers of the CLI's flag values that belong to no one stage: durations,
// points in time, states, priority, labels and the lines of a `batch` input;
// and the one form of every flag error. Pure: no I/O, no gRPC
// (tests/client/flag_values_test.cc).
//
// Errors are INVALID_ARGUMENT whose message starts with the flag at fault and
// quotes the bad value, e.g. `--priority: want low, normal or high, got
// "urgent"`; main.cc prints them as usage errors (exit code 2).
#ifndef CONVEYOR_CLIENT_FLAG_VALUES_H_
#define CONVEYOR_CLIENT_FLAG_VALUES_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "conveyor/v1/chain.pb.h"

namespace conveyor::client {

// INVALID_ARGUMENT "<flag>: <description>".
absl::Status FlagError(absl::string_view flag, absl::string_view description);
// `text` in double quotes, as flag errors show the value typed.
std::string Quote(absl::string_view text);

// "low" | "normal" | "high" (any case).
absl::StatusOr<conveyor::v1::Priority> ParsePriority(absl::string_view text);

// "k=v" (key non-empty).
absl::StatusOr<std::pair<std::string, std::string>> ParseLabel(absl::string_view text);

// Durations: Go-style "1h30m", "500ms", "30s", plus days "2d"; must be > 0.
// `flag` names the flag in errors.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag, absl::string_view text);

// A point in time for --since/--before: an RFC 3339 time
// ("2026-11-26T10:00:00Z") or a duration meaning "that long before `now`".
absl::StatusOr<absl::Time> ParseTimeFlag(absl::string_view flag, absl::string_view text,
                                         absl::Time now);

// "succeeded" / "FAILED" / ... -> State. `allowed` empty means any state.
absl::StatusOr<conveyor::v1::State> ParseStateFlag(
    absl::string_view flag, absl::string_view text,
    const std::vector<conveyor::v1::State>& allowed = {});

// The items of a `batch` input file: one URL or file path per line; blank
// lines and lines starting with '#' are skipped; surrounding spaces trimmed.
std::vector<std::string> ParseBatchLines(absl::string_view text);

// True for http:// and https:// URLs: a batch item is a URL or a file path.
// (Whether a URL is acceptable is CheckHttpUrl's call, common/step_specs.h.)
bool IsHttpUrl(absl::string_view text);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_FLAG_VALUES_H_
