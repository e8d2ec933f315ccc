// What one stage call came back with: the part the stage seam
// (StageReply, stage_client.h) and the scheduler (AttemptResult,
// scheduler.h) share, so the two cannot drift apart.
#ifndef CONVEYOR_ORCHESTRATOR_STAGE_OUTCOME_H_
#define CONVEYOR_ORCHESTRATOR_STAGE_OUTCOME_H_

#include <string>

#include "absl/status/status.h"
#include "conveyor/v1/chain.pb.h"

namespace conveyor::orchestrator {

struct StageOutcome {
  absl::Status status;
  conveyor::v1::StepOutput output;
  // The worker that answered (gRPC peer address), may be empty.
  std::string worker;
  // The call never reached a serving worker of the stage (no connection to
  // any worker could be made, or the target serves another service:
  // UNIMPLEMENTED). Nothing ran, so no attempt is spent and the step waits
  // for its stage (see Scheduler::OnAttemptResult).
  bool not_delivered = false;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_STAGE_OUTCOME_H_
