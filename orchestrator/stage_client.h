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
#include "orchestrator/stage_outcome.h"

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

struct StageReply : StageOutcome {
  // Image bytes produced (download, resize, filter).
  std::string output_bytes;
};

class StageCallHandle {
 public:
  virtual ~StageCallHandle() = default;
  // Cancels the call if it is still running; its callback still runs (with
  // CANCELLED).
  virtual void Cancel() = 0;
};

// What a health check of a stage's target found.
struct StageHealth {
  enum class State {
    // Check("conveyor.v1.<Stage>") answered SERVING.
    kServing,
    // It answered NOT_SERVING (e.g. the worker is draining) or UNKNOWN.
    kNotServing,
    // No answer: could not connect, deadline exceeded, no target configured.
    kUnreachable,
    // Something answers there, but not this stage: health has no entry for
    // the stage's service (NOT_FOUND) or no health service (UNIMPLEMENTED).
    // A target pointing at another stage's worker looks like this.
    kWrongService,
  };
  State state = State::kUnreachable;
  // Why, when not kServing: the gRPC code and message, e.g.
  // "UNAVAILABLE: failed to connect to all addresses". Empty when serving.
  std::string detail;

  bool serving() const { return state == State::kServing; }
};

// "SERVING", "NOT_SERVING", "UNREACHABLE", "WRONG_SERVICE".
inline const char* StageHealthName(StageHealth::State state) {
  switch (state) {
    case StageHealth::State::kServing:
      return "SERVING";
    case StageHealth::State::kNotServing:
      return "NOT_SERVING";
    case StageHealth::State::kUnreachable:
      return "UNREACHABLE";
    case StageHealth::State::kWrongService:
      return "WRONG_SERVICE";
  }
  return "UNREACHABLE";
}

class StageClient {
 public:
  virtual ~StageClient() = default;
  // Starts `call`; `done` runs exactly once, on an arbitrary thread, and must
  // not block for long.
  virtual std::shared_ptr<StageCallHandle> Start(StageCall call,
                                                 absl::AnyInvocable<void(StageReply) &&> done) = 0;
  // The configured target of a stage.
  virtual std::string Target(conveyor::v1::StageKind kind) const = 0;
  // grpc.health.v1 Check of the stage's own service name (e.g.
  // "conveyor.v1.ResizeStage") on its target, bounded by `timeout`. One
  // unary call on the channel calls use (no new connection when it is up;
  // fails fast while it is down), so it is cheap enough to run every
  // ~250 ms from a background thread. Thread-safe; never blocks past
  // `timeout`; no side effects on dispatch.
  virtual StageHealth CheckHealth(conveyor::v1::StageKind kind, absl::Duration timeout) = 0;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_STAGE_CLIENT_H_
