// conveyor.v1.FilterStage over gRPC: the thin adapter from the callback API to
// Filterer, run on a bounded WorkerPool (full -> RESOURCE_EXHAUSTED at once).
#ifndef CONVEYOR_STAGES_FILTER_FILTER_SERVICE_H_
#define CONVEYOR_STAGES_FILTER_FILTER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "common/unary_call.h"
#include "common/worker_pool.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "stages/filter/filter.h"

namespace conveyor::stages::filter {

class FilterService final
    : public v1::FilterStage::WithRawCallbackMethod_Filter<v1::FilterStage::CallbackService> {
 public:
  // `filterer` and `pool` must outlive the service.
  FilterService(const Filterer& filterer, WorkerPool& pool) : filterer_(filterer), runner_(pool) {}

  // Raw (ByteBuffer) so that a request that does not parse gets
  // INVALID_ARGUMENT from us, not gRPC's empty UNIMPLEMENTED (UnaryRunner::RunRaw).
  grpc::ServerUnaryReactor* Filter(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override {
    return runner_.RunRaw<v1::FilterRequest, v1::FilterResponse>(
        ctx, request, response, "conveyor.v1.FilterStage/Filter",
        [this](const auto& req, auto& resp, CallScope& call) { return Work(req, resp, call); });
  }

 private:
  // Runs the logic on a pool thread and adds its figures to the log line.
  absl::Status Work(const v1::FilterRequest& req, v1::FilterResponse& resp, CallScope& call) const;

  const Filterer& filterer_;
  const UnaryRunner runner_;
};

}  // namespace conveyor::stages::filter

#endif  // CONVEYOR_STAGES_FILTER_FILTER_SERVICE_H_
