// Glue between a callback-API unary method and a blocking piece of logic.
//
//   grpc::ServerUnaryReactor* Resize(grpc::CallbackServerContext* ctx,
//                                    const ResizeRequest* request,
//                                    ResizeResponse* response) override {
//     return RunUnary(ctx, request, response, pool_, "conveyor.v1.ResizeStage/Resize",
//                     [this](const ResizeRequest& req, ResizeResponse& resp, CallScope& call) {
//                       return resizer_.Resize(req, resp, call.cancelled);
//                     });
//   }
//
// The work runs on `pool`; if the pool is full the call finishes at once with
// RESOURCE_EXHAUSTED. One log line is written per call when it finishes.
#ifndef CONVEYOR_STAGES_COMMON_UNARY_CALL_H_
#define CONVEYOR_STAGES_COMMON_UNARY_CALL_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "stages/common/grpc_status.h"
#include "stages/common/log.h"
#include "stages/common/status_details.h"
#include "stages/common/worker_pool.h"

namespace conveyor {

// What a piece of work may know about its call.
struct CallScope {
  // True once the client cancelled or the deadline passed; check it between
  // units of work and stop early.
  std::function<bool()> cancelled;
  // The call's deadline (absl::InfiniteFuture() if none).
  absl::Time deadline;
  // Extra key=value pairs for the request's log line (sizes, dimensions...).
  std::vector<std::pair<std::string, std::string>> log_fields;
};

namespace internal {

void LogUnaryCall(absl::string_view rpc, const std::string& chain, int step, int attempt,
                  const absl::Status& status, absl::Duration elapsed, size_t in_bytes,
                  size_t out_bytes, const CallScope& scope);

absl::Time DeadlineOf(const grpc::CallbackServerContext& ctx);

}  // namespace internal

template <typename Request, typename Response, typename Work>
grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* ctx, const Request* request,
                                   Response* response, WorkerPool& pool, absl::string_view rpc,
                                   Work work) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const absl::Time start = absl::Now();
  auto finish = [ctx, request, response, reactor, rpc, start](const absl::Status& status,
                                                              const CallScope& scope) {
    internal::LogUnaryCall(rpc, request->context().chain(), request->context().step_index(),
                           request->context().attempt(), status, absl::Now() - start,
                           request->ByteSizeLong(),
                           status.ok() ? response->ByteSizeLong() : 0, scope);
    reactor->Finish(ToGrpcStatus(status));
  };
  bool accepted = pool.TrySubmit([ctx, request, response, finish, work = std::move(work)]() mutable {
    CallScope scope;
    scope.cancelled = [ctx] { return ctx->IsCancelled(); };
    scope.deadline = internal::DeadlineOf(*ctx);
    absl::Status status;
    if (ctx->IsCancelled()) {
      status = absl::CancelledError("call cancelled before work started");
    } else {
      status = work(*request, *response, scope);
    }
    finish(status, scope);
  });
  if (!accepted) {
    // The reason tells the orchestrator that the work never started, so the
    // refusal is backpressure, not a failed attempt.
    finish(WithErrorReason(absl::ResourceExhaustedError("worker is at its concurrency limit "
                                                         "(--worker-threads + --max-queued); "
                                                         "retry later"),
                           kReasonWorkerBusy),
           CallScope{});
  }
  return reactor;
}

}  // namespace conveyor

#endif  // CONVEYOR_STAGES_COMMON_UNARY_CALL_H_
