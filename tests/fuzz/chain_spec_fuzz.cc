// Chain-spec validation (orchestrator/chain_validator.h) fed from JSON through
// protobuf's JSON parser, the way `conveyor submit --spec` and grpcurl users
// hand a chain in: the bytes are parsed as a SubmitChainRequest and as a bare
// ChainSpec, then validated exactly as ChainApi::Submit does. Must not crash;
// a spec that passes must respect the limits the validator documents.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "conveyor/v1/chain.pb.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "google/protobuf/util/json_util.h"
#include "orchestrator/chain_validator.h"

namespace {

namespace v1 = conveyor::v1;
namespace orch = conveyor::orchestrator;

// An error trailer above 8 KiB reaches clients as RESOURCE_EXHAUSTED instead
// of the validator's code (issue 10, "Imprecise errors").
constexpr size_t kMaxMessageBytes = 8192;

[[noreturn]] void Finding(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "chain_spec_fuzz: %s (status %s, %zu-byte message)\n", what,
               absl::StatusCodeToString(status.code()).c_str(), status.message().size());
  std::abort();
}

void CheckVerdict(const absl::Status& status) {
  if (status.ok()) return;
  if (status.code() != absl::StatusCode::kInvalidArgument) {
    Finding("validation failed with a code other than INVALID_ARGUMENT", status);
  }
  if (status.message().empty() || status.message().size() > kMaxMessageBytes) {
    Finding("validation error message empty or too long", status);
  }
}

void ValidateSpec(const v1::ChainSpec& spec, bool has_inline_source) {
  const absl::Status status = orch::ValidateChainSpec(spec, has_inline_source);
  CheckVerdict(status);
  if (status.ok() && (spec.steps_size() < 1 || spec.steps_size() > orch::kMaxSteps ||
                      spec.labels_size() > orch::kMaxLabels)) {
    Finding("accepted a spec beyond kMaxSteps/kMaxLabels", status);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  google::protobuf::util::JsonParseOptions options;
  // What the CLI does for --spec: unknown fields are an error, not dropped.
  options.ignore_unknown_fields = false;

  v1::SubmitChainRequest request;
  if (google::protobuf::util::JsonStringToMessage(json, &request, options).ok()) {
    const absl::Status key = orch::ValidateIdempotencyKey(request.idempotency_key());
    CheckVerdict(key);
    if (key.ok()) ValidateSpec(request.spec(), !request.source().data().empty());
  }

  v1::ChainSpec spec;
  if (google::protobuf::util::JsonStringToMessage(json, &spec, options).ok()) {
    ValidateSpec(spec, false);
    ValidateSpec(spec, true);
  }
  return 0;
}
