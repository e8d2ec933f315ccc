#include "orchestrator/dispatch_rules.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/stage_registry.h"

namespace conveyor::orchestrator::dispatch {

using conveyor::v1::Chain;
using conveyor::v1::StageKind;

bool NeedsInput(StageKind kind) {
  const StageInfo* stage = FindStage(kind);
  return stage != nullptr && stage->consumes == DataKind::kImage;
}

bool ReportsOutputs(StageKind kind) {
  const StageInfo* stage = FindStage(kind);
  return stage != nullptr && stage->reports_outputs;
}

std::vector<std::pair<std::string, int>> FreshCounters(const QueueEntry& entry) {
  if (entry.counted) return {};
  return {QueuedCounter(entry.kind, -1)};
}

absl::Time WaitExpiry(const Chain& chain, int step, const SchedulerOptions& options) {
  absl::Time expires = absl::InfiniteFuture();
  if (chain.has_deadline()) expires = FromProtoTime(chain.deadline());
  if (step >= 0 && step < chain.steps_size() && chain.steps(step).has_waiting_since()) {
    const conveyor::v1::StepStatus& s = chain.steps(step);
    expires = std::min(expires, FromProtoTime(s.waiting_since()) + options.MaxOutage(s.kind()));
  }
  return expires;
}

}  // namespace conveyor::orchestrator::dispatch
