// conveyor.v1.DownloadStage over gRPC: the thin adapter from the callback API
// to Downloader, run on a bounded WorkerPool (full -> RESOURCE_EXHAUSTED).
#ifndef CONVEYOR_STAGES_DOWNLOAD_DOWNLOAD_SERVICE_H_
#define CONVEYOR_STAGES_DOWNLOAD_DOWNLOAD_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "conveyor/v1/stages.grpc.pb.h"
#include "common/unary_call.h"
#include "common/worker_pool.h"
#include "stages/download/download.h"

namespace conveyor::stages::download {

class DownloadService final : public v1::DownloadStage::WithRawCallbackMethod_Download<v1::DownloadStage::CallbackService> {
 public:
  // `downloader` and `pool` must outlive the service.
  DownloadService(const Downloader& downloader, WorkerPool& pool)
      : downloader_(downloader), runner_(pool) {}

  // Raw (ByteBuffer) so that a request that does not parse gets
  // INVALID_ARGUMENT from us, not gRPC's empty UNIMPLEMENTED (UnaryRunner::RunRaw).
  grpc::ServerUnaryReactor* Download(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;

 private:
  const Downloader& downloader_;
  const UnaryRunner runner_;
};

}  // namespace conveyor::stages::download

#endif  // CONVEYOR_STAGES_DOWNLOAD_DOWNLOAD_SERVICE_H_
