// Small rules the dispatcher's parts share (dispatcher*.cc): what a step's
// call carries, the counters a fresh claim moves, and the timings.
#ifndef CONVEYOR_ORCHESTRATOR_DISPATCH_RULES_H_
#define CONVEYOR_ORCHESTRATOR_DISPATCH_RULES_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "conveyor/v1/chain.pb.h"
#include "orchestrator/chain_store.h"
#include "orchestrator/scheduler.h"

namespace conveyor::orchestrator::dispatch {

// The step's call carries the image the step before produced.
bool NeedsInput(conveyor::v1::StageKind kind);
// The step's call carries every earlier step's output.
bool ReportsOutputs(conveyor::v1::StageKind kind);
// A fresh entry's claim takes it off its stage's "queued" counter.
std::vector<std::pair<std::string, int>> FreshCounters(const QueueEntry& entry);
// When a waiting step must be released whatever its stage does: the chain's
// deadline or the end of the stage's max outage.
absl::Time WaitExpiry(const conveyor::v1::Chain& chain, int step, const SchedulerOptions& options);

inline constexpr int kMaxCasRounds = 5;
inline constexpr absl::Duration kPromoteRecheck = absl::Milliseconds(250);
inline constexpr absl::Duration kReconcileInterval = absl::Seconds(1);
// Redis could not be reached while handling an entry or recording a result:
// try again after this long (the entry stays heartbeated meanwhile).
inline constexpr absl::Duration kRedisRetryDelay = absl::Milliseconds(250);
// Calls a stage may take at once right after an outage; the window then
// grows by one per delivered call.
inline constexpr int kRecoveryWindow = 4;

}  // namespace conveyor::orchestrator::dispatch

#endif  // CONVEYOR_ORCHESTRATOR_DISPATCH_RULES_H_
