// Test helpers for the upload stage: real encoded images and a real
// conveyor-upload process on a loopback port.
#ifndef CONVEYOR_TESTS_STAGES_UPLOAD_UPLOAD_WORKER_H_
#define CONVEYOR_TESTS_STAGES_UPLOAD_UPLOAD_WORKER_H_

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "common/grpc_status.h"
#include "tests/testing/process_fixture.h"

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

// Waits until something accepts TCP connections on 127.0.0.1:`port`, or
// `timeout` passes. WaitForGrpcServing's channel, once refused, backs off for
// seconds before it tries again; calling it only after the port is open
// keeps each worker start well under a second.
inline bool WaitForTcpListener(int port, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  while (absl::Now() < deadline) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const bool connected =
        ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    if (connected) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

// conveyor-upload started with `flags` (plus --listen), serving once the
// constructor returns (check ready()).
class UploadWorker {
 public:
  explicit UploadWorker(const std::vector<std::string>& flags, std::vector<std::string> env = {})
      : log_(log_dir_.path() + "/upload.log") {
    const int port = conveyor::testing::PickFreePort();
    const std::string address = conveyor::testing::LoopbackAddress(port);
    std::vector<std::string> argv = {CONVEYOR_BIN_DIR "/conveyor-upload", "--listen", address};
    argv.insert(argv.end(), flags.begin(), flags.end());
    process_ = std::make_unique<conveyor::testing::ScopedProcess>(argv, log_, std::move(env));
    WaitForTcpListener(port, absl::Seconds(20));
    ready_ = conveyor::testing::WaitForGrpcServing(address, absl::Seconds(20));
    stub_ = conveyor::v1::UploadStage::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }

  const absl::Status& ready() const { return ready_; }
  std::string Log() const { return conveyor::testing::ReadFile(log_); }

  // Calls Upload with a 20 s deadline; the gRPC status comes back as absl,
  // details (field, reason) included.
  absl::Status Upload(const conveyor::v1::UploadRequest& request,
                      conveyor::v1::UploadResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return FromGrpcStatus(stub_->Upload(&context, request, response));
  }

 private:
  conveyor::testing::TempDir log_dir_;
  std::string log_;
  std::unique_ptr<conveyor::testing::ScopedProcess> process_;
  absl::Status ready_;
  std::unique_ptr<conveyor::v1::UploadStage::Stub> stub_;
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
