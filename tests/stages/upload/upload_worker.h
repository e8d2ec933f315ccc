// Test helpers for the upload stage: real encoded images and a real
// conveyor-upload process on a loopback port.
#ifndef CONVEYOR_TESTS_STAGES_UPLOAD_UPLOAD_WORKER_H_
#define CONVEYOR_TESTS_STAGES_UPLOAD_UPLOAD_WORKER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "common/grpc_status.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/stage_worker.h"

namespace conveyor::stages::upload::testing {

// A `width` x `height` gradient encoded as ".png", ".jpg" or ".webp".
inline std::string EncodedImage(const std::string& extension, int width, int height, int seed = 0) {
  cv::Mat pixels(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      pixels.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uchar>((x + seed) & 0xFF), static_cast<uchar>((y * 2) & 0xFF),
                    static_cast<uchar>((x + y + seed * 7) & 0xFF));
    }
  }
  std::vector<uchar> bytes;
  cv::imencode(extension, pixels, bytes);
  return std::string(bytes.begin(), bytes.end());
}

// conveyor-upload started with `flags` on 127.0.0.1:0, serving once the
// constructor returns (check ready()); its output goes to a log Log() reads.
class UploadWorker {
 public:
  explicit UploadWorker(const std::vector<std::string>& flags, std::vector<std::string> env = {})
      : log_(log_dir_.path() + "/upload.log"),
        worker_("conveyor-upload", flags, std::move(env), log_) {}

  const absl::Status& ready() const { return worker_.ready(); }
  std::string Log() const { return conveyor::testing::ReadFile(log_); }

  // Calls Upload with a 20 s deadline; the gRPC status comes back as absl,
  // details (field, reason) included.
  absl::Status Upload(const conveyor::v1::UploadRequest& request,
                      conveyor::v1::UploadResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return FromGrpcStatus(worker_.stub().Upload(&context, request, response));
  }

 private:
  conveyor::testing::TempDir log_dir_;
  std::string log_;
  conveyor::testing::StageWorker<conveyor::v1::UploadStage> worker_;
};

inline conveyor::v1::UploadRequest MakeRequest(const std::string& destination,
                                               const std::string& image,
                                               const std::string& chain = "chains/c1", int step = 3,
                                               int attempt = 1) {
  conveyor::v1::UploadRequest request;
  request.mutable_context()->set_chain(chain);
  request.mutable_context()->set_step_index(step);
  request.mutable_context()->set_attempt(attempt);
  request.mutable_image()->set_data(image);
  request.mutable_spec()->set_destination(destination);
  return request;
}

}  // namespace conveyor::stages::upload::testing

#endif  // CONVEYOR_TESTS_STAGES_UPLOAD_UPLOAD_WORKER_H_
