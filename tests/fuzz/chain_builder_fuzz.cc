// The CLI's chain builder (client/chain_builder.h) from fuzzed flag values:
// every StepFlags/ChainFlags field and each single-flag parser gets a string
// from the input. Must not crash (UBSan also catches overflow in the duration
// and number parsing), and what it returns must keep its documented contract:
//  - a built request has at least one step and survives the --spec route
//    (proto JSON out, BuildSubmitRequestFromSpec back in, no flags) unchanged;
//  - geometry within 0..16384 and not 0x0; durations > 0;
//  - batch items trimmed, non-empty, never a comment.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "client/chain_builder.h"
#include "client/flag_values.h"
#include "client/image_flags.h"
#include "common/proto_time.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"

namespace {

namespace client = conveyor::client;

[[noreturn]] void Finding(const char* what, const std::string& input) {
  std::fprintf(stderr, "chain_builder_fuzz: %s (input \"%s\")\n", what, input.c_str());
  std::abort();
}

std::string Flag(FuzzedDataProvider& p) { return p.ConsumeRandomLengthString(48); }

void CheckSingleFlagParsers(const std::string& text) {
  if (absl::StatusOr<conveyor::v1::ResizeSpec> g = client::ParseResizeGeometry(text); g.ok()) {
    if (g->width() < 0 || g->width() > 16384 || g->height() < 0 || g->height() > 16384 ||
        (g->width() == 0 && g->height() == 0)) {
      Finding("ParseResizeGeometry accepted a bad size", text);
    }
  }
  client::ParseFilterOp(text).IgnoreError();
  client::ParsePriority(text).IgnoreError();
  client::ParseLabel(text).IgnoreError();
  if (absl::StatusOr<absl::Duration> d = client::ParseDurationFlag("--timeout", text); d.ok()) {
    if (*d <= absl::ZeroDuration()) Finding("ParseDurationFlag accepted a duration <= 0", text);
    conveyor::ToProtoDuration(*d);
  }
  if (absl::StatusOr<absl::Time> t =
          client::ParseTimeFlag("--since", text, absl::FromUnixSeconds(1'800'000'000));
      t.ok()) {
    conveyor::FromProtoTime(conveyor::ToProtoTime(*t));
  }
  client::ParseStateFlag("--state", text).IgnoreError();
  client::ParseStateFlag("--state", text, {conveyor::v1::FAILED, conveyor::v1::CANCELLED})
      .IgnoreError();
  for (const std::string& item : client::ParseBatchLines(text)) {
    if (item.empty() || item.front() == '#' || item.find('\n') != std::string::npos ||
        absl::ascii_isspace(static_cast<unsigned char>(item.front())) ||
        absl::ascii_isspace(static_cast<unsigned char>(item.back()))) {
      Finding("ParseBatchLines returned a bad item", text);
    }
  }
  client::IsHttpUrl(text);
}

void CheckSpecRoundTrip(const conveyor::v1::SubmitChainRequest& request) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(request, &json).ok()) return;
  absl::StatusOr<conveyor::v1::SubmitChainRequest> again =
      client::BuildSubmitRequestFromSpec(json, client::ChainFlags{});
  if (!again.ok()) Finding("a built request is refused as --spec", json);
  if (!google::protobuf::util::MessageDifferencer::Equals(request, *again)) {
    Finding("a built request changes through --spec", json);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider p(data, size);
  client::ChainFlags flags;
  client::StepFlags& s = flags.steps;
  s.url = Flag(p);
  s.inline_source = p.ConsumeBool();
  s.resize = Flag(p);
  s.fit = Flag(p);
  s.fast = p.ConsumeBool();
  s.format = Flag(p);
  s.quality = p.ConsumeIntegral<int>();
  for (int n = p.ConsumeIntegralInRange(0, 4); n > 0; --n) s.filters.push_back(Flag(p));
  s.upload = Flag(p);
  s.key_template = Flag(p);
  s.webhook = Flag(p);
  s.timeout_per_step = Flag(p);
  s.max_attempts = p.ConsumeIntegral<int>();
  flags.priority = Flag(p);
  for (int n = p.ConsumeIntegralInRange(0, 3); n > 0; --n) flags.labels.push_back(Flag(p));
  flags.idempotency_key = Flag(p);
  flags.chain_timeout = Flag(p);

  const absl::StatusOr<conveyor::v1::SubmitChainRequest> built = client::BuildSubmitRequest(flags);
  if (built.ok()) {
    if (built->spec().steps_size() < 1) Finding("built a chain without steps", s.url);
    CheckSpecRoundTrip(*built);
  }

  // The rest: one more value for every single-flag parser, and as a --spec
  // file with the chain-level flags on top (step flags cleared: they cannot
  // be combined with a spec).
  const std::string rest = p.ConsumeRemainingBytesAsString();
  CheckSingleFlagParsers(rest);
  client::ChainFlags chain_only;
  chain_only.priority = flags.priority;
  chain_only.labels = flags.labels;
  chain_only.idempotency_key = flags.idempotency_key;
  chain_only.chain_timeout = flags.chain_timeout;
  chain_only.steps.timeout_per_step = s.timeout_per_step;
  chain_only.steps.max_attempts = s.max_attempts;
  client::BuildSubmitRequestFromSpec(rest, chain_only).IgnoreError();
  return 0;
}
