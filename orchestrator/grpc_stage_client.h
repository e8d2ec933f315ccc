// StageClient over gRPC: one channel per stage target with gRPC's round_robin
// load balancing (so a dns:/// name with several addresses spreads the load
// over every worker replica), async callback calls, the worker's peer address
// returned with each reply, errors converted with FromGrpcStatus.
//
// Thread-safe.
#ifndef CONVEYOR_ORCHESTRATOR_GRPC_STAGE_CLIENT_H_
#define CONVEYOR_ORCHESTRATOR_GRPC_STAGE_CLIENT_H_

#include <map>
#include <memory>
#include <string>

#include "orchestrator/stage_client.h"

namespace grpc {
class Channel;
}

namespace conveyor::orchestrator {

struct StageTargets {
  std::map<conveyor::v1::StageKind, std::string> targets;
  int64_t max_message_bytes = 64 << 20;
};

class GrpcStageClient : public StageClient {
 public:
  explicit GrpcStageClient(const StageTargets& targets);
  ~GrpcStageClient() override;

  std::shared_ptr<StageCallHandle> Start(StageCall call,
                                         absl::AnyInvocable<void(StageReply) &&> done) override;
  std::string Target(conveyor::v1::StageKind kind) const override;
  StageHealth CheckHealth(conveyor::v1::StageKind kind, absl::Duration timeout) override;

  // The grpc.health.v1 service name a worker of `kind` registers, e.g.
  // "conveyor.v1.ResizeStage"; "" for an unknown kind.
  static std::string HealthServiceName(conveyor::v1::StageKind kind);

 private:
  struct Stubs;
  StageTargets targets_;
  std::map<conveyor::v1::StageKind, std::shared_ptr<grpc::Channel>> channels_;
  std::unique_ptr<Stubs> stubs_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_GRPC_STAGE_CLIENT_H_
