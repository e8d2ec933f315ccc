#include "stages/upload/upload_service.h"

#include "common/unary_call.h"

namespace conveyor::stages::upload {

grpc::ServerUnaryReactor* UploadService::Upload(grpc::CallbackServerContext* context,
                                                const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response) {
  return RunRawUnary<conveyor::v1::UploadRequest, conveyor::v1::UploadResponse>(
      context, request, response, pool_, "conveyor.v1.UploadStage/Upload",
      [this](const conveyor::v1::UploadRequest& req, conveyor::v1::UploadResponse& resp,
             CallScope& call) {
        return uploader_.Upload(req, resp, call.cancelled, call.deadline, call.log_fields);
      });
}

}  // namespace conveyor::stages::upload
