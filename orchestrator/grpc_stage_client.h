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

namespace google::protobuf {
class Message;
}
namespace grpc {
class Channel;
class ChannelCredentials;
}  // namespace grpc

namespace conveyor::orchestrator {

struct StageTargets {
  std::map<conveyor::v1::StageKind, std::string> targets;
  int64_t max_message_bytes = 64 << 20;
  // The worker channels' credentials (--worker-tls-*: common/tls_credentials.h);
  // null = plaintext (--insecure, and tests).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // The name to verify in every worker's certificate (--worker-tls-server-name);
  // "" = each target's own host name.
  std::string server_name;
};

// A stage's unary method, as the registry names it: its path and its
// request and response types (prototypes from the generated pool, so New()
// gives the generated classes).
struct StageMethod {
  std::string path;  // "/conveyor.v1.ResizeStage/Resize"
  const google::protobuf::Message* request = nullptr;
  const google::protobuf::Message* response = nullptr;
};

// Calls go through grpc::GenericStub: a call carries the request fields the
// registry says the stage takes, so a new stage needs no code here.
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
  StageTargets targets_;
  std::map<conveyor::v1::StageKind, std::shared_ptr<grpc::Channel>> channels_;
  // Each stage's method (from the registry): its path and message types.
  std::map<conveyor::v1::StageKind, StageMethod> methods_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_GRPC_STAGE_CLIENT_H_
