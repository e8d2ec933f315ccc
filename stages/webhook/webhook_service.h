// conveyor.v1.WebhookStage over gRPC: the thin adapter from the callback API
// to WebhookSender, run on a bounded WorkerPool (full -> RESOURCE_EXHAUSTED).
#ifndef CONVEYOR_STAGES_WEBHOOK_WEBHOOK_SERVICE_H_
#define CONVEYOR_STAGES_WEBHOOK_WEBHOOK_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "common/unary_call.h"
#include "common/worker_pool.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "stages/webhook/webhook.h"

namespace conveyor::stages::webhook {

class WebhookService final
    : public v1::WebhookStage::WithRawCallbackMethod_Deliver<v1::WebhookStage::CallbackService> {
 public:
  // `sender` and `pool` must outlive the service.
  WebhookService(const WebhookSender& sender, WorkerPool& pool) : sender_(sender), runner_(pool) {}

  // Raw (ByteBuffer) so that a request that does not parse gets
  // INVALID_ARGUMENT from us, not gRPC's empty UNIMPLEMENTED (UnaryRunner::RunRaw).
  grpc::ServerUnaryReactor* Deliver(grpc::CallbackServerContext* ctx,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override {
    return runner_.RunRaw<v1::WebhookRequest, v1::WebhookResponse>(
        ctx, request, response, "conveyor.v1.WebhookStage/Deliver",
        [this](const auto& req, auto& resp, CallScope& call) { return Work(req, resp, call); });
  }

 private:
  // Runs the logic on a pool thread and adds its figures to the log line.
  absl::Status Work(const v1::WebhookRequest& req, v1::WebhookResponse& resp,
                    CallScope& call) const;

  const WebhookSender& sender_;
  const UnaryRunner runner_;
};

}  // namespace conveyor::stages::webhook

#endif  // CONVEYOR_STAGES_WEBHOOK_WEBHOOK_SERVICE_H_
