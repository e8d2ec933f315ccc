// Turns the CLI's step flags (or a --spec JSON file) into the
// SubmitChainRequest the orchestrator takes. Pure: no I/O, no gRPC, so every
// flag rule is unit-tested (tests/client/chain_builder_test.cc).
//
// Errors are INVALID_ARGUMENT whose message starts with the flag at fault and
// quotes the bad value, e.g. `--resize: want WxH, Wx or xH, got "80x60x1"`;
// main.cc prints them as usage errors (exit code 2).
#ifndef CONVEYOR_CLIENT_CHAIN_BUILDER_H_
#define CONVEYOR_CLIENT_CHAIN_BUILDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "conveyor/v1/chain.pb.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace conveyor::client {

// The flags that describe a chain's steps; the same set for `submit` and
// `batch`. Empty / zero means "not given".
struct StepFlags {
  std::string url;                   // --url: a download step first
  bool inline_source = false;        // --file: source bytes come with the request
  std::string resize;                // --resize "800x600", "800x", "x600"
  std::string fit;                   // --fit contain|cover|fill|inside
  bool fast = false;                 // --fast: shrink-on-load FAST
  std::string format;                // --format jpeg|png|webp
  int quality = 0;                   // --quality 1..100
  std::vector<std::string> filters;  // --filter, repeatable, order kept
  std::string upload;                // --upload file:///dir | s3://bucket[/prefix]
  std::string key_template;          // --key
  std::string webhook;               // --webhook URL
  std::string timeout_per_step;      // --timeout-per-step, a duration
  int max_attempts = 0;              // --max-attempts 1..20
};

// Chain-level flags.
struct ChainFlags {
  StepFlags steps;
  std::string priority;             // --priority low|normal|high
  std::vector<std::string> labels;  // --label k=v, repeatable
  std::string idempotency_key;      // --idempotency-key
  std::string chain_timeout;        // --chain-timeout, a duration
};

// Builds the request from flags. Steps come in the fixed order download
// (--url), resize (--resize), filter (--filter...), upload (--upload),
// webhook (--webhook). --format/--quality set the encoding of the last of
// resize/filter. Needs exactly one source: --url or --file (inline_source).
absl::StatusOr<conveyor::v1::SubmitChainRequest> BuildSubmitRequest(const ChainFlags& flags);

// Parses a --spec file: the proto JSON form of either a SubmitChainRequest
// ({"spec": {...}, "idempotencyKey": ...}) or a bare ChainSpec
// ({"steps": [...]}). Then applies the chain-level flags of `flags` on top
// (labels are added, the others replace), and --timeout-per-step /
// --max-attempts to every step that sets none. Step flags (--url, --resize,
// --filter, --upload, --webhook, --fit, --fast, --format, --quality, --key)
// cannot be combined with a spec: INVALID_ARGUMENT.
absl::StatusOr<conveyor::v1::SubmitChainRequest> BuildSubmitRequestFromSpec(
    absl::string_view json, const ChainFlags& flags);

// Single-flag parsers, exposed for the tests and for `list`/`purge`.

// "800x600" / "800x" / "x600" -> ResizeSpec width/height.
absl::StatusOr<conveyor::v1::ResizeSpec> ParseResizeGeometry(absl::string_view text);

// "grayscale", "blur:sigma=2", "sharpen:amount=1,sigma=1", "sepia",
// "brightness:brightness=10,contrast=1.2", "invert", "edges:low=100,high=200".
absl::StatusOr<conveyor::v1::FilterOp> ParseFilterOp(absl::string_view text);

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

// True for http:// and https:// URLs (a batch item is a URL or a file path).
bool IsHttpUrl(absl::string_view text);

// Converters between absl time types and the protobuf well-known types.
google::protobuf::Timestamp ToProtoTimestamp(absl::Time t);
absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& t);
google::protobuf::Duration ToProtoDuration(absl::Duration d);
absl::Duration FromProtoDuration(const google::protobuf::Duration& d);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_CHAIN_BUILDER_H_
