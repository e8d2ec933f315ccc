#include "stages/upload/upload_service.h"

#include "stages/common/unary_call.h"

namespace conveyor::stages::upload {

grpc::ServerUnaryReactor* UploadService::Upload(grpc::CallbackServerContext* context,
                                                const conveyor::v1::UploadRequest* request,
                                                conveyor::v1::UploadResponse* response) {
  return RunUnary(context, request, response, pool_, "conveyor.v1.UploadStage/Upload",
                  [this](const conveyor::v1::UploadRequest& req, conveyor::v1::UploadResponse& resp,
                         CallScope& call) {
                    return uploader_.Upload(req, resp, call.cancelled, call.deadline,
                                            call.log_fields);
                  });
}

}  // namespace conveyor::stages::upload
