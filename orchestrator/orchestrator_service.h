// conveyor.v1.Orchestrator over gRPC's callback API: a thin adapter over
// ChainApi. Handlers never block a gRPC thread: unary calls go through the
// common UnaryRunner (common/unary_call.h: the WorkerPool, full ->
// RESOURCE_EXHAUSTED at once, and the one log line per call); WatchChain
// streams are ChainWatcher's (orchestrator/chain_watch.h, bounded by
// max_watches).
#ifndef CONVEYOR_ORCHESTRATOR_ORCHESTRATOR_SERVICE_H_
#define CONVEYOR_ORCHESTRATOR_ORCHESTRATOR_SERVICE_H_

#include "common/call_scope.h"
#include "common/unary_call.h"
#include "common/worker_pool.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "orchestrator/auth/authenticator.h"
#include "orchestrator/caller.h"
#include "orchestrator/chain_api.h"
#include "orchestrator/chain_store.h"
#include "orchestrator/chain_watch.h"

namespace conveyor::orchestrator {

struct OrchestratorServiceOptions {
  int max_watches = 256;
  int64_t max_source_bytes = 64 << 20;
};

class OrchestratorService final : public conveyor::v1::Orchestrator::CallbackService {
 public:
  // `api`, `store`, `pool` and `authenticator` must outlive the service.
  // Every call is authenticated by `authenticator` and needs one scope
  // (caller.h says which); health and reflection are other services and
  // stay open.
  OrchestratorService(ChainApi& api, ChainStore& store, WorkerPool& pool,
                      const auth::Authenticator& authenticator, OrchestratorServiceOptions options);

  grpc::ServerUnaryReactor* SubmitChain(grpc::CallbackServerContext* ctx,
                                        const conveyor::v1::SubmitChainRequest* request,
                                        conveyor::v1::Chain* response) override;
  grpc::ServerReadReactor<conveyor::v1::SubmitChainChunk>* StreamSubmitChain(
      grpc::CallbackServerContext* ctx, conveyor::v1::Chain* response) override;
  grpc::ServerUnaryReactor* GetChain(grpc::CallbackServerContext* ctx,
                                     const conveyor::v1::GetChainRequest* request,
                                     conveyor::v1::Chain* response) override;
  grpc::ServerUnaryReactor* ListChains(grpc::CallbackServerContext* ctx,
                                       const conveyor::v1::ListChainsRequest* request,
                                       conveyor::v1::ListChainsResponse* response) override;
  grpc::ServerWriteReactor<conveyor::v1::ChainEvent>* WatchChain(
      grpc::CallbackServerContext* ctx, const conveyor::v1::WatchChainRequest* request) override;
  grpc::ServerUnaryReactor* CancelChain(grpc::CallbackServerContext* ctx,
                                        const conveyor::v1::CancelChainRequest* request,
                                        conveyor::v1::Chain* response) override;
  grpc::ServerUnaryReactor* RetryChain(grpc::CallbackServerContext* ctx,
                                       const conveyor::v1::RetryChainRequest* request,
                                       conveyor::v1::Chain* response) override;
  grpc::ServerUnaryReactor* PurgeChains(grpc::CallbackServerContext* ctx,
                                        const conveyor::v1::PurgeChainsRequest* request,
                                        conveyor::v1::PurgeChainsResponse* response) override;
  grpc::ServerUnaryReactor* GetSystemStatus(grpc::CallbackServerContext* ctx,
                                            const conveyor::v1::GetSystemStatusRequest* request,
                                            conveyor::v1::SystemStatus* response) override;
  grpc::ServerUnaryReactor* CancelChains(grpc::CallbackServerContext* ctx,
                                         const conveyor::v1::CancelChainsRequest* request,
                                         conveyor::v1::BulkChainsResponse* response) override;
  grpc::ServerUnaryReactor* RetryChains(grpc::CallbackServerContext* ctx,
                                        const conveyor::v1::RetryChainsRequest* request,
                                        conveyor::v1::BulkChainsResponse* response) override;

 private:
  // The caller of `ctx` (UNAUTHENTICATED if it is none), if it has `needed`
  // (PERMISSION_DENIED otherwise). Adds principal= and tenant= to the
  // call's log line once the caller is known.
  absl::StatusOr<Caller> Identify(const grpc::CallbackServerContext& ctx, Scope needed,
                                  CallScope& scope) const;
  // Identify as a callable for one RPC's scope.
  auto Identifier(Scope needed) const {
    return [this, needed](const grpc::CallbackServerContext& ctx, CallScope& scope) {
      return Identify(ctx, needed, scope);
    };
  }

  ChainApi& api_;
  const auth::Authenticator& authenticator_;
  WorkerPool& pool_;
  const OrchestratorServiceOptions options_;
  const UnaryRunner runner_;
  ChainWatcher watcher_;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_ORCHESTRATOR_SERVICE_H_
