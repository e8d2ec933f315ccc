// conveyor.v1.DownloadStage over gRPC: the thin adapter from the callback API
// to Downloader, run on a bounded WorkerPool (full -> RESOURCE_EXHAUSTED).
#ifndef CONVEYOR_STAGES_DOWNLOAD_DOWNLOAD_SERVICE_H_
#define CONVEYOR_STAGES_DOWNLOAD_DOWNLOAD_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "common/unary_call.h"
#include "common/worker_pool.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "stages/download/download.h"

namespace conveyor::stages::download {

class DownloadService final
    : public v1::DownloadStage::WithRawCallbackMethod_Download<v1::DownloadStage::CallbackService> {
 public:
  // `downloader` and `pool` must outlive the service.
  DownloadService(const Downloader& downloader, WorkerPool& pool)
      : downloader_(downloader), runner_(pool) {}

  // Raw (ByteBuffer) so that a request that does not parse gets
  // INVALID_ARGUMENT from us, not gRPC's empty UNIMPLEMENTED (UnaryRunner::RunRaw).
  grpc::ServerUnaryReactor* Download(grpc::CallbackServerContext* ctx,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override {
    return runner_.RunRaw<v1::DownloadRequest, v1::DownloadResponse>(
        ctx, request, response, "conveyor.v1.DownloadStage/Download",
        [this](const auto& req, auto& resp, CallScope& call) { return Work(req, resp, call); });
  }

 private:
  // Runs the logic on a pool thread and adds its figures to the log line.
  absl::Status Work(const v1::DownloadRequest& req, v1::DownloadResponse& resp,
                    CallScope& call) const;

  const Downloader& downloader_;
  const UnaryRunner runner_;
};

}  // namespace conveyor::stages::download

#endif  // CONVEYOR_STAGES_DOWNLOAD_DOWNLOAD_SERVICE_H_
