// The seam to the stage workers. The dispatcher starts calls through it and
// gets the outcome in a callback; GrpcStageClient is the real implementation
// (grpc_stage_client.h), tests may script one.
#ifndef CONVEYOR_ORCHESTRATOR_STAGE_CLIENT_H_
#define CONVEYOR_ORCHESTRATOR_STAGE_CLIENT_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "conveyor/v1/chain.pb.h"
#include "conveyor/v1/stages.pb.h"

namespace conveyor::orchestrator {

struct StageCall {
  conveyor::v1::StageKind kind = conveyor::v1::STAGE_KIND_UNSPECIFIED;
  conveyor::v1::StepContext context;
  conveyor::v1::Step step;
  // Input image for resize, filter and upload (data plus what the producing
  // step reported about it).
  conveyor::v1::Image input;
  // For webhook.
  conveyor::v1::ChainReport report;
  absl::Time deadline = absl::InfiniteFuture();
};

struct StageReply {
  absl::Status status;
  conveyor::v1::StepOutput output;
  // Image bytes produced (download, resize, filter).
  std::string output_bytes;
  // The worker that answered (gRPC peer), if known.
  std::string worker;
  // The call never reached a serving worker of the stage: no connection to
  // any worker could be made, or the target serves another service
  // (UNIMPLEMENTED). Nothing ran, so the attempt is not spent.
  bool not_delivered = false;
};

class StageCallHandle {
 public:
  virtual ~StageCallHandle() = default;
  // Cancels the call if it is still running; its callback still runs (with
  // CANCELLED).
  virtual void Cancel() = 0;
};

class StageClient {
 public:
  virtual ~StageClient() = default;
  // Starts `call`; `done` runs exactly once, on an arbitrary thread, and must
  // not block for long.
  virtual std::shared_ptr<StageCallHandle> Start(StageCall call,
                                                 absl::AnyInvocable<void(StageReply) &&> done) = 0;
  // The configured target of a stage.
  virtual std::string Target(conveyor::v1::StageKind kind) const = 0;
  // grpc.health.v1 Check of a stage, bounded by `timeout`: OK if SERVING.
  virtual absl::Status CheckHealth(conveyor::v1::StageKind kind, absl::Duration timeout) = 0;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_STAGE_CLIENT_H_
