// Turns the CLI's step flags (or a --spec JSON file) into the
// SubmitChainRequest the orchestrator takes. Pure: no I/O, no gRPC, so every
// flag rule is unit-tested (tests/client/chain_builder_test.cc). The values
// of single flags are parsed by flag_values.h and image_flags.h; each built
// step then passes its stage's own spec check (common/step_specs.h), the
// rule the orchestrator applies.
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
#include "conveyor/v1/chain.pb.h"
#include "conveyor/v1/orchestrator.pb.h"

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

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_CHAIN_BUILDER_H_
