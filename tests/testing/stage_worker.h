// A real stage worker process for gRPC-level tests: the binary from
// CONVEYOR_BIN_DIR on a loopback port it bound itself (port 0 + --port-file,
// ServerProcess), serving (grpc.health.v1) before
// the constructor returns, with a stub of its service.
#ifndef CONVEYOR_TESTS_TESTING_STAGE_WORKER_H_
#define CONVEYOR_TESTS_TESTING_STAGE_WORKER_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/testing/error_details.h"  // BadRequestField, for the stage tests
#include "tests/testing/process_fixture.h"

namespace conveyor::testing {

// Service is a generated service class, e.g. conveyor::v1::ResizeStage.
template <typename Service>
class StageWorker {
 public:
  // Starts `binary` (a name in CONVEYOR_BIN_DIR) on 127.0.0.1:0 with `flags`,
  // extra environment `env` ("NAME=value"), output to `log_path` (inherited
  // if empty). ready() says whether it came up serving.
  StageWorker(const std::string& binary, std::vector<std::string> flags = {},
              std::vector<std::string> env = {}, std::string log_path = "") {
    std::vector<std::string> argv = {std::string(CONVEYOR_BIN_DIR) + "/" + binary};
    argv.insert(argv.end(), flags.begin(), flags.end());
    server_ = std::make_unique<ServerProcess>(std::move(argv), std::move(log_path),
                                              std::move(env));
    address_ = server_->address();
    ready_ = server_->WaitUntilServing(absl::Seconds(20));
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);  // the workers' default, not gRPC's 4 MB
    args.SetMaxSendMessageSize(64 << 20);
    stub_ = Service::NewStub(
        grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
  }

  const absl::Status& ready() const { return ready_; }
  const std::string& address() const { return address_; }
  typename Service::Stub& stub() { return *stub_; }
  ScopedProcess& process() { return server_->process(); }

 private:
  std::string address_;
  std::unique_ptr<ServerProcess> server_;
  absl::Status ready_;
  std::unique_ptr<typename Service::Stub> stub_;
};

// One asynchronous unary call whose completion a test can poll or wait for:
//   PendingCall<v1::ResizeResponse> call;
//   stub.async()->Resize(&call.context, &request, &call.response, call.Completion());
// `request` must outlive the call.
template <typename Response>
struct PendingCall {
  grpc::ClientContext context;
  Response response;

  std::function<void(grpc::Status)> Completion() {
    return [this](grpc::Status status) {
      absl::MutexLock lock(&mu_);
      status_ = std::move(status);
      done_ = true;
    };
  }
  bool Done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }
  // True if the call finished within `timeout`.
  bool Wait(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
  }
  // Valid once Done().
  grpc::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_STAGE_WORKER_H_
