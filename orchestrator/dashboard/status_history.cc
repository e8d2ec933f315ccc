#include "orchestrator/dashboard/status_history.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "common/stage_registry.h"
#include "orchestrator/chain_api.h"
#include "orchestrator/dashboard/dashboard_json.h"

namespace conveyor::orchestrator::dashboard {

using conveyor::v1::SystemStatus;

void StatusHistory::Add(absl::Time time, SystemStatus status) {
  absl::MutexLock lock(&mu_);
  samples_.push_back({time, std::move(status)});
  while (samples_.size() > capacity_) samples_.pop_front();
  ++added_;
}

std::vector<StatusSample> StatusHistory::Samples() const {
  absl::MutexLock lock(&mu_);
  return {samples_.begin(), samples_.end()};
}

int64_t StatusHistory::added() const {
  absl::MutexLock lock(&mu_);
  return added_;
}

std::vector<StatusSample> StatusHistory::SamplesAfter(int64_t seen, int64_t* added) const {
  absl::MutexLock lock(&mu_);
  *added = added_;
  const int64_t fresh =
      std::min<int64_t>(added_ - std::max<int64_t>(seen, 0), static_cast<int64_t>(samples_.size()));
  if (fresh <= 0) return {};
  return {samples_.end() - fresh, samples_.end()};
}

std::string StatusHistoryJson(const std::vector<StatusSample>& samples, const Caller& caller) {
  const bool details = caller.Has(Scope::kAdmin);
  google::protobuf::Struct json;
  auto& fields = *json.mutable_fields();
  if (samples.empty()) {
    fields["current"].set_null_value(google::protobuf::NULL_VALUE);
  } else {
    google::protobuf::util::JsonParseOptions parse;
    // The newest sample as its own JSON mapping, redacted, inside ours.
    (void)google::protobuf::util::JsonStringToMessage(
        ToJson(ChainApi::RedactSystemStatus(samples.back().status, caller)),
        fields["current"].mutable_struct_value(), parse);
  }
  google::protobuf::ListValue* history = fields["history"].mutable_list_value();
  for (const StatusSample& sample : samples) {
    auto& point = *history->add_values()->mutable_struct_value()->mutable_fields();
    point["time"].set_string_value(
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", sample.time, absl::UTCTimeZone()));
    auto& stages = *point["stages"].mutable_struct_value()->mutable_fields();
    for (const conveyor::v1::StageStatus& stage : sample.status.stages()) {
      auto& s =
          *stages[std::string(StageName(stage.kind()))].mutable_struct_value()->mutable_fields();
      s["health"].set_string_value(conveyor::v1::StageStatus::Health_Name(stage.health()));
      if (details) {
        s["queued"].set_number_value(static_cast<double>(stage.queued()));
        s["inFlight"].set_number_value(static_cast<double>(stage.in_flight()));
        s["waiting"].set_number_value(static_cast<double>(stage.waiting()));
      }
    }
    if (details) point["replicas"].set_number_value(sample.status.replicas_size());
  }
  return ToJson(json);
}

}  // namespace conveyor::orchestrator::dashboard
