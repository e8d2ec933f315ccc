// conveyor.v1.UploadStage over the callback API: a thin adapter that runs
// Uploader on the worker pool.
#ifndef CONVEYOR_STAGES_UPLOAD_UPLOAD_SERVICE_H_
#define CONVEYOR_STAGES_UPLOAD_UPLOAD_SERVICE_H_

#include "common/unary_call.h"
#include "common/worker_pool.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "stages/upload/uploader.h"

namespace conveyor::stages::upload {

class UploadService final : public conveyor::v1::UploadStage::WithRawCallbackMethod_Upload<
                                conveyor::v1::UploadStage::CallbackService> {
 public:
  // Neither is owned; both must outlive the service.
  UploadService(const Uploader& uploader, WorkerPool& pool) : uploader_(uploader), runner_(pool) {}

  // Raw (ByteBuffer) so that a request that does not parse gets
  // INVALID_ARGUMENT from us, not gRPC's empty UNIMPLEMENTED (UnaryRunner::RunRaw).
  grpc::ServerUnaryReactor* Upload(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;

 private:
  const Uploader& uploader_;
  const UnaryRunner runner_;
};

}  // namespace conveyor::stages::upload

#endif  // CONVEYOR_STAGES_UPLOAD_UPLOAD_SERVICE_H_
