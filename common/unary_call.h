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
#ifndef CONVEYOR_COMMON_UNARY_CALL_H_
#define CONVEYOR_COMMON_UNARY_CALL_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/status_details.h"
#include "common/worker_pool.h"

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

namespace internal {

// RunUnary's body. `serialize` runs after successful work, before Finish (raw
// methods write the response bytes there); `keep_alive` owns what `request`
// and `response` point into until the call is finished.
template <typename Request, typename Response, typename Work, typename Serialize>
grpc::ServerUnaryReactor* RunUnaryWith(grpc::CallbackServerContext* ctx, const Request* request,
                                       Response* response, WorkerPool& pool,
                                       absl::string_view rpc, Work work, Serialize serialize,
                                       std::shared_ptr<void> keep_alive) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const absl::Time start = absl::Now();
  auto finish = [request, response, reactor, rpc, start, serialize,
                 keep_alive](absl::Status status, const CallScope& scope) {
    if (status.ok()) status = serialize();
    LogUnaryCall(rpc, request->context().chain(), request->context().step_index(),
                 request->context().attempt(), status, absl::Now() - start,
                 request->ByteSizeLong(), status.ok() ? response->ByteSizeLong() : 0, scope);
    reactor->Finish(ToGrpcStatus(status));
  };
  bool accepted = pool.TrySubmit([ctx, request, response, finish, work = std::move(work)]() mutable {
    CallScope scope;
    scope.cancelled = [ctx] { return ctx->IsCancelled(); };
    scope.deadline = DeadlineOf(*ctx);
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

}  // namespace internal

template <typename Request, typename Response, typename Work>
grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* ctx, const Request* request,
                                   Response* response, WorkerPool& pool, absl::string_view rpc,
                                   Work work) {
  return internal::RunUnaryWith(
      ctx, request, response, pool, rpc, std::move(work), [] { return absl::OkStatus(); },
      nullptr);
}

// RunUnary for a method registered raw (the generated
// WithRawCallbackMethod_<Method>): parses the request bytes itself, so bytes
// that are no `Request` get INVALID_ARGUMENT "request is not a valid
// conveyor.v1.ResizeRequest message" instead of the empty UNIMPLEMENTED that
// gRPC's typed handler sends before any code of ours runs. The wire format of
// the method is unchanged.
template <typename Request, typename Response, typename Work>
grpc::ServerUnaryReactor* RunRawUnary(grpc::CallbackServerContext* ctx,
                                      const grpc::ByteBuffer* raw_request,
                                      grpc::ByteBuffer* raw_response, WorkerPool& pool,
                                      absl::string_view rpc, Work work) {
  struct Messages {
    Request request;
    Response response;
  };
  auto messages = std::make_shared<Messages>();
  grpc::ByteBuffer consumed(*raw_request);  // Deserialize empties its buffer; this shares slices
  if (!grpc::SerializationTraits<Request>::Deserialize(&consumed, &messages->request).ok()) {
    const absl::Status status = absl::InvalidArgumentError(
        absl::StrCat("request is not a valid ", Request::descriptor()->full_name(),
                     " message (", raw_request->Length(), " bytes that do not parse)"));
    internal::LogUnaryCall(rpc, "", 0, 0, status, absl::ZeroDuration(), raw_request->Length(), 0,
                 CallScope{});
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  auto serialize = [messages, raw_response]() {
    bool own_buffer = false;
    grpc::Status written = grpc::SerializationTraits<Response>::Serialize(
        messages->response, raw_response, &own_buffer);
    if (written.ok()) return absl::OkStatus();
    return absl::InternalError("could not serialize the response");
  };
  return internal::RunUnaryWith(ctx, &messages->request, &messages->response, pool, rpc,
                                std::move(work), serialize, messages);
}

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_UNARY_CALL_H_
