// conveyor.v1.ResizeStage over gRPC: the thin adapter from the callback API to
// Resizer, run on a bounded WorkerPool (full -> RESOURCE_EXHAUSTED at once).
#ifndef CONVEYOR_STAGES_RESIZE_RESIZE_SERVICE_H_
#define CONVEYOR_STAGES_RESIZE_RESIZE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "common/unary_call.h"
#include "common/worker_pool.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "stages/resize/resize.h"

namespace conveyor::stages::resize {

class ResizeService final
    : public v1::ResizeStage::WithRawCallbackMethod_Resize<v1::ResizeStage::CallbackService> {
 public:
  // `resizer` and `pool` must outlive the service.
  ResizeService(const Resizer& resizer, WorkerPool& pool) : resizer_(resizer), runner_(pool) {}

  // Raw (ByteBuffer) so that a request that does not parse gets
  // INVALID_ARGUMENT from us, not gRPC's empty UNIMPLEMENTED (UnaryRunner::RunRaw).
  grpc::ServerUnaryReactor* Resize(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override {
    return runner_.RunRaw<v1::ResizeRequest, v1::ResizeResponse>(
        ctx, request, response, "conveyor.v1.ResizeStage/Resize",
        [this](const auto& req, auto& resp, CallScope& call) { return Work(req, resp, call); });
  }

 private:
  // Runs the logic on a pool thread and adds its figures to the log line.
  absl::Status Work(const v1::ResizeRequest& req, v1::ResizeResponse& resp, CallScope& call) const;

  const Resizer& resizer_;
  const UnaryRunner runner_;
};

}  // namespace conveyor::stages::resize

#endif  // CONVEYOR_STAGES_RESIZE_RESIZE_SERVICE_H_
