// The one runner for unary RPCs, the stage workers' and the orchestrator's
// alike: the work runs on a bounded WorkerPool (full -> the runner's `busy`
// status, RESOURCE_EXHAUSTED, at once), and each call writes one log line
// when it finishes, in one format for every server:
//   level=info rpc=conveyor.v1.ResizeStage/Resize chain=chains/7f3 step=2 attempt=1
//       code=OK ms=184 in_bytes=90210 out_bytes=80311 out_dims=200x100
// (chain from the request's StepContext, with step and attempt, or from its
// `name`; the work's own log_fields after the sizes; `error` when not OK).
// A stage request whose StepContext fails CheckStepContext (chain not
// "chains/<id>", tenant not a tenant name) gets INVALID_ARGUMENT before any
// work.
// The one place to count calls (metrics) later.
//
//   class ResizeService ... {
//     grpc::ServerUnaryReactor* Resize(grpc::CallbackServerContext* ctx,
//                                      const grpc::ByteBuffer* request,
//                                      grpc::ByteBuffer* response) override {
//       return runner_.RunRaw<ResizeRequest, ResizeResponse>(
//           ctx, request, response, "conveyor.v1.ResizeStage/Resize",
//           [this](const ResizeRequest& req, ResizeResponse& resp, CallScope& call) {
//             return resizer_.Resize(req, resp, call.cancelled);
//           });
//     }
//     UnaryRunner runner_{pool};
//   };
//
// Thread-safety: a runner is immutable; Run/RunRaw may be called from any
// gRPC thread. `work` runs on a pool thread and may block.
#ifndef CONVEYOR_COMMON_UNARY_CALL_H_
#define CONVEYOR_COMMON_UNARY_CALL_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/call_scope.h"
#include "common/grpc_status.h"
#include "common/step_context.h"
#include "common/worker_pool.h"

namespace conveyor {

// What a call's log line says it is about: the chain, and for a stage call
// the step and attempt. An empty chain leaves all three out.
struct CallSubject {
  std::string chain;
  bool has_step = false;
  int step = 0;
  int attempt = 0;
};

// A stage request's StepContext; an orchestrator request's `name`; else none.
template <typename Request>
CallSubject SubjectOf(const Request& request) {
  if constexpr (requires { request.context().step_index(); }) {
    return {request.context().chain(), true, request.context().step_index(),
            request.context().attempt()};
  } else if constexpr (requires { request.name(); }) {
    return {request.name()};
  } else {
    return {};
  }
}

// Writes the call's one log line: warn when `status` is not OK.
void LogCall(absl::string_view rpc, const CallSubject& subject, const absl::Status& status,
             absl::Duration elapsed, size_t in_bytes, size_t out_bytes, const CallScope& scope);

// What a stage worker answers when its pool is full. The WORKER_BUSY reason
// tells the orchestrator that the work never started, so the refusal is
// backpressure, not a failed attempt.
absl::Status WorkerBusyError();

// Moves a successful `result` into `response`; the work's status either way.
// For work written as absl::StatusOr<Response> (ChainApi).
template <typename Response>
absl::Status FillResponse(absl::StatusOr<Response> result, Response& response) {
  if (result.ok()) response = *std::move(result);
  return result.status();
}

namespace internal {

absl::Time DeadlineOf(const grpc::CallbackServerContext& ctx);

}  // namespace internal

class UnaryRunner {
 public:
  // Calls run on `pool`, which must outlive the runner; a call that finds it
  // full finishes at once with `busy` (RESOURCE_EXHAUSTED).
  explicit UnaryRunner(WorkerPool& pool, absl::Status busy = WorkerBusyError())
      : pool_(pool), busy_(std::move(busy)) {}

  // `work(const Request&, Response&, CallScope&) -> absl::Status` runs on the
  // pool (CANCELLED without running if the call is cancelled first); its
  // status finishes the call. `rpc` is the full method name, for the log line.
  template <typename Request, typename Response, typename Work>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx, const Request* request,
                                Response* response, absl::string_view rpc, Work work) const {
    return RunWith(
        ctx, request, response, rpc, std::move(work), [] { return absl::OkStatus(); }, nullptr);
  }

  // Run for a method registered raw (the generated
  // WithRawCallbackMethod_<Method>): parses the request bytes itself, so bytes
  // that are no `Request` get INVALID_ARGUMENT "request is not a valid
  // conveyor.v1.ResizeRequest message" instead of the empty UNIMPLEMENTED that
  // gRPC's typed handler sends before any code of ours runs. The wire format of
  // the method is unchanged.
  template <typename Request, typename Response, typename Work>
  grpc::ServerUnaryReactor* RunRaw(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* raw_request,
                                   grpc::ByteBuffer* raw_response, absl::string_view rpc,
                                   Work work) const {
    struct Messages {
      Request request;
      Response response;
    };
    auto messages = std::make_shared<Messages>();
    grpc::ByteBuffer consumed(*raw_request);  // Deserialize empties its buffer; this shares slices
    if (!grpc::SerializationTraits<Request>::Deserialize(&consumed, &messages->request).ok()) {
      const absl::Status status = absl::InvalidArgumentError(
          absl::StrCat("request is not a valid ", Request::descriptor()->full_name(), " message (",
                       raw_request->Length(), " bytes that do not parse)"));
      LogCall(rpc, CallSubject{}, status, absl::ZeroDuration(), raw_request->Length(), 0,
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
    return RunWith(ctx, &messages->request, &messages->response, rpc, std::move(work), serialize,
                   messages);
  }

 private:
  // The body of Run and RunRaw. `serialize` runs after successful work,
  // before Finish (raw methods write the response bytes there); `keep_alive`
  // owns what `request` and `response` point into until the call is finished.
  template <typename Request, typename Response, typename Work, typename Serialize>
  grpc::ServerUnaryReactor* RunWith(grpc::CallbackServerContext* ctx, const Request* request,
                                    Response* response, absl::string_view rpc, Work work,
                                    Serialize serialize, std::shared_ptr<void> keep_alive) const {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    const absl::Time start = absl::Now();
    auto finish = [request, response, reactor, rpc, start, serialize, keep_alive](
                      absl::Status status, const CallScope& scope) {
      if (status.ok()) status = serialize();
      LogCall(rpc, SubjectOf(*request), status, absl::Now() - start, request->ByteSizeLong(),
              status.ok() ? response->ByteSizeLong() : 0, scope);
      reactor->Finish(ToGrpcStatus(status));
    };
    // A stage request's StepContext is checked here, once for every worker,
    // before it takes a pool slot (common/step_context.h).
    if constexpr (requires { request->context().tenant(); }) {
      if (absl::Status valid = CheckStepContext(request->context()); !valid.ok()) {
        finish(std::move(valid), CallScope{});
        return reactor;
      }
    }
    const bool accepted =
        pool_.TrySubmit([ctx, request, response, finish, work = std::move(work)]() mutable {
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
    if (!accepted) finish(busy_, CallScope{});
    return reactor;
  }

  WorkerPool& pool_;
  const absl::Status busy_;
};

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_UNARY_CALL_H_
