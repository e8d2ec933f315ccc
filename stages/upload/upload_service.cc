#include "stages/upload/upload_service.h"

namespace conveyor::stages::upload {

grpc::ServerUnaryReactor* UploadService::Upload(grpc::CallbackServerContext* context,
                                                const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response) {
  return runner_.RunRaw<conveyor::v1::UploadRequest, conveyor::v1::UploadResponse>(
      context, request, response, "conveyor.v1.UploadStage/Upload",
      [this](const conveyor::v1::UploadRequest& req, conveyor::v1::UploadResponse& resp,
             CallScope& call) {
        return uploader_.Upload(req, resp, call.cancelled, call.deadline, call.log_fields);
      });
}

}  // namespace conveyor::stages::upload
