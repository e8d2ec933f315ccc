#include "client/chain_filter_flags.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/flag_values.h"
#include "common/proto_time.h"
#include "common/stage_registry.h"

namespace conveyor::client {

bool FilterFlagsEmpty(const FilterFlags& f) {
  return f.state.empty() && f.labels.empty() && f.stage.empty() && f.error_reason.empty() &&
         f.since.empty() && f.before.empty() && f.ended_after.empty() && f.ended_before.empty();
}

absl::StatusOr<conveyor::v1::StageKind> ParseStageFlag(absl::string_view flag,
                                                       absl::string_view text) {
  const StageInfo* stage = FindStageByName(absl::StripAsciiWhitespace(text));
  if (stage != nullptr) return stage->kind;
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": want one of ", StageNames(), ", got \"", text, "\""));
}

absl::StatusOr<conveyor::v1::ChainFilter> BuildChainFilter(const FilterFlags& f, absl::Time now) {
  conveyor::v1::ChainFilter filter;
  if (!f.state.empty()) {
    absl::StatusOr<conveyor::v1::State> state = ParseStateFlag("--state", f.state);
    if (!state.ok()) return state.status();
    filter.set_state(*state);
  }
  for (const std::string& text : f.labels) {
    absl::StatusOr<std::pair<std::string, std::string>> label = ParseLabel(text);
    if (!label.ok()) return label.status();
    (*filter.mutable_labels())[label->first] = label->second;
  }
  if (!f.stage.empty()) {
    absl::StatusOr<conveyor::v1::StageKind> stage = ParseStageFlag("--stage", f.stage);
    if (!stage.ok()) return stage.status();
    filter.set_stage(*stage);
  }
  filter.set_error_reason(std::string(absl::StripAsciiWhitespace(f.error_reason)));
  const struct {
    const char* flag;
    const std::string& text;
    google::protobuf::Timestamp* (conveyor::v1::ChainFilter::*field)();
  } times[] = {
      {"--since", f.since, &conveyor::v1::ChainFilter::mutable_create_time_after},
      {"--before", f.before, &conveyor::v1::ChainFilter::mutable_create_time_before},
      {"--ended-after", f.ended_after, &conveyor::v1::ChainFilter::mutable_end_time_after},
      {"--ended-before", f.ended_before, &conveyor::v1::ChainFilter::mutable_end_time_before},
  };
  for (const auto& t : times) {
    if (t.text.empty()) continue;
    absl::StatusOr<absl::Time> at = ParseTimeFlag(t.flag, t.text, now);
    if (!at.ok()) return at.status();
    *(filter.*t.field)() = ToProtoTime(*at);
  }
  return filter;
}

void ApplyToListRequest(const conveyor::v1::ChainFilter& filter,
                        conveyor::v1::ListChainsRequest& request) {
  request.set_state(filter.state());
  *request.mutable_labels() = filter.labels();
  request.set_stage(filter.stage());
  request.set_error_reason(filter.error_reason());
  if (filter.has_create_time_after()) {
    *request.mutable_create_time_after() = filter.create_time_after();
  }
  if (filter.has_create_time_before()) {
    *request.mutable_create_time_before() = filter.create_time_before();
  }
  if (filter.has_end_time_after()) *request.mutable_end_time_after() = filter.end_time_after();
  if (filter.has_end_time_before()) *request.mutable_end_time_before() = filter.end_time_before();
}

std::string ConfirmQuestion(absl::string_view verb, int64_t count) {
  std::string capitalised(verb);
  if (!capitalised.empty()) capitalised[0] = absl::ascii_toupper(capitalised[0]);
  return absl::StrCat(capitalised, " ", count, count == 1 ? " chain" : " chains", "? [y/N] ");
}

bool IsYes(absl::string_view answer) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(answer));
  return lower == "y" || lower == "yes";
}

}  // namespace conveyor::client
