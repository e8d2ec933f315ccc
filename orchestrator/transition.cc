#include "orchestrator/transition.h"

#include "absl/strings/match.h"
#include "common/stage_registry.h"
#include "orchestrator/caller.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;
using conveyor::v1::ChainSpec;
using conveyor::v1::State;
using conveyor::v1::StepStatus;

bool IsTerminal(State state) {
  return state == conveyor::v1::SUCCEEDED || state == conveyor::v1::FAILED ||
         state == conveyor::v1::CANCELLED;
}

int FirstUnfinishedStep(const Chain& chain) {
  for (int i = 0; i < chain.steps_size(); ++i) {
    if (chain.steps(i).state() != conveyor::v1::SUCCEEDED) return i;
  }
  return chain.steps_size();
}

int ProgressPercent(const Chain& chain) {
  if (chain.steps_size() == 0) return 0;
  int done = 0;
  for (const StepStatus& s : chain.steps()) done += s.state() == conveyor::v1::SUCCEEDED;
  return done * 100 / chain.steps_size();
}

bool ProducesImage(const conveyor::v1::Step& step) {
  const StageInfo* stage = StageOfStep(step);
  return stage != nullptr && stage->produces == DataKind::kImage;
}

int InputBlobIndex(const ChainSpec& spec, int step) {
  for (int k = step - 1; k >= 0; --k) {
    if (ProducesImage(spec.steps(k))) return k + 1;
  }
  return 0;
}

std::vector<int> BlobIndexes(const Chain& chain) {
  std::vector<int> out;
  if (chain.has_inline_source()) out.push_back(0);
  for (int k = 0; k < chain.spec().steps_size(); ++k) {
    if (ProducesImage(chain.spec().steps(k))) out.push_back(k + 1);
  }
  return out;
}

std::string ChainTenant(const conveyor::v1::Chain& chain) {
  return chain.tenant().empty() ? std::string(kDefaultTenant) : chain.tenant();
}

std::string ChainIdFromName(const std::string& name) {
  absl::string_view id = name;
  if (absl::StartsWith(id, "chains/")) id.remove_prefix(7);
  return std::string(id);
}

}  // namespace conveyor::orchestrator
