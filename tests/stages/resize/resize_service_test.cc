// Starts the real conveyor-resize binary on loopback and calls it over gRPC.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "conveyor/v1/stages.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "common/grpc_status.h"
#include "common/status_details.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/stage_worker.h"
#include "tests/stages/common/hostile_images.h"

namespace conveyor::stages::resize {
namespace {

using conveyor::testing::BadRequestField;
using conveyor::testing::PendingCall;
using conveyor::testing::ScopedProcess;
using conveyor::testing::StageWorker;

std::string Jpeg(int width, int height) {
  cv::Mat image(height, width, CV_8UC3);
  cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(".jpg", image, bytes));
  return std::string(bytes.begin(), bytes.end());
}

class ResizeWorker {
 public:
  explicit ResizeWorker(std::vector<std::string> extra_flags = {},
                        std::vector<std::string> extra_env = {})
      : worker_("conveyor-resize", std::move(extra_flags), std::move(extra_env)) {
    EXPECT_TRUE(worker_.ready().ok()) << worker_.ready();
  }
  v1::ResizeStage::Stub& stub() { return worker_.stub(); }
  ScopedProcess& process() { return worker_.process(); }
  const std::string& address() const { return worker_.address(); }

  grpc::Status Call(const v1::ResizeRequest& request, v1::ResizeResponse* response) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return stub().Resize(&ctx, request, response);
  }

 private:
  StageWorker<v1::ResizeStage> worker_;
};

v1::ResizeRequest Request(const std::string& data, int width, int height) {
  v1::ResizeRequest request;
  request.mutable_context()->set_chain("chains/test");
  request.mutable_context()->set_step_index(1);
  request.mutable_context()->set_attempt(1);
  request.mutable_image()->set_data(data);
  request.mutable_spec()->set_width(width);
  request.mutable_spec()->set_height(height);
  return request;
}

// The BadRequest field named in a gRPC error's details, or "".

class ResizeServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { worker_ = new ResizeWorker(); }
  static void TearDownTestSuite() {
    delete worker_;
    worker_ = nullptr;
  }
  static ResizeWorker* worker_;
};
ResizeWorker* ResizeServiceTest::worker_ = nullptr;

TEST_F(ResizeServiceTest, ResizesJpeg) {
  v1::ResizeResponse response;
  grpc::Status status = worker_->Call(Request(Jpeg(1200, 800), 300, 0), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.image().media_type(), "image/jpeg");
  EXPECT_EQ(response.image().width(), 300);
  EXPECT_EQ(response.image().height(), 200);
  cv::Mat decoded = cv::imdecode(
      std::vector<uchar>(response.image().data().begin(), response.image().data().end()),
      cv::IMREAD_COLOR);
  EXPECT_EQ(decoded.size(), cv::Size(300, 200));
}

TEST_F(ResizeServiceTest, ConvertsFormat) {
  v1::ResizeRequest request = Request(Jpeg(200, 100), 50, 50);
  request.mutable_spec()->set_fit(v1::ResizeSpec::COVER);
  request.mutable_spec()->mutable_output()->set_format(v1::IMAGE_FORMAT_PNG);
  v1::ResizeResponse response;
  grpc::Status status = worker_->Call(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.image().media_type(), "image/png");
  EXPECT_EQ(response.image().width(), 50);
  EXPECT_EQ(response.image().height(), 50);
}

TEST_F(ResizeServiceTest, BadWidthIsInvalidArgumentNamingField) {
  v1::ResizeResponse response;
  grpc::Status status = worker_->Call(Request(Jpeg(100, 100), -3, 0), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "spec.width: want 0..16384, got -3");
  EXPECT_EQ(BadRequestField(status), "spec.width");
}

TEST_F(ResizeServiceTest, NoTargetSizeIsInvalidArgument) {
  v1::ResizeResponse response;
  grpc::Status status = worker_->Call(Request(Jpeg(100, 100), 0, 0), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadRequestField(status), "spec.width");
}

TEST_F(ResizeServiceTest, BadQualityIsInvalidArgument) {
  v1::ResizeRequest request = Request(Jpeg(100, 100), 10, 10);
  request.mutable_spec()->mutable_output()->set_quality(101);
  v1::ResizeResponse response;
  grpc::Status status = worker_->Call(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadRequestField(status), "spec.output.quality");
}

TEST_F(ResizeServiceTest, NonImageBytesAreInvalidArgument) {
  v1::ResizeResponse response;
  grpc::Status status = worker_->Call(Request("<html>404</html>", 10, 10), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadRequestField(status), "image.data");
  EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "NOT_AN_IMAGE");
}

TEST_F(ResizeServiceTest, TruncatedJpegIsInvalidArgument) {
  v1::ResizeResponse response;
  grpc::Status status = worker_->Call(Request(Jpeg(100, 100).substr(0, 200), 10, 10), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ResizeServiceTest, DecompressionBombIsInvalidArgument) {
  // A PNG signature and IHDR declaring 100000 x 100000, and nothing else.
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\x01\x86\xa0\0\x01\x86\xa0\x08\x02\0\0\0", 29);
  png += std::string(4, '\0');
  v1::ResizeResponse response;
  grpc::Status status = worker_->Call(Request(png, 100, 100), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "IMAGE_TOO_LARGE");
  EXPECT_NE(status.error_message().find("100000x100000"), std::string::npos)
      << status.error_message();
}

TEST(ResizeServiceFlagsTest, MaxPixelsFlagLowersTheLimit) {
  ResizeWorker worker({"--max-pixels", "10000"});
  v1::ResizeResponse response;
  grpc::Status status = worker.Call(Request(Jpeg(101, 100), 10, 10), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "IMAGE_TOO_LARGE");
  status = worker.Call(Request(Jpeg(100, 100), 10, 10), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST(ResizeServiceFlagsTest, MaxPixelsFromEnvironment) {
  ResizeWorker worker({}, {"CONVEYOR_MAX_PIXELS=10000"});
  v1::ResizeResponse response;
  grpc::Status status = worker.Call(Request(Jpeg(101, 100), 10, 10), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "IMAGE_TOO_LARGE");
}

TEST(ResizeServiceFlagsTest, BadFlagExitsNonZero) {
  ScopedProcess process({CONVEYOR_BIN_DIR "/conveyor-resize", "--max-pixels", "-5"});
  EXPECT_NE(process.Wait(absl::Seconds(20)), 0);
}

TEST(ResizeServiceFlagsTest, FullWorkerAnswersResourceExhausted) {
  ResizeWorker worker({"--worker-threads", "1", "--max-queued", "0"});
  // A slow call: 1000x1000 upscaled to 9000x9000 (81 MP, cubic) and encoded.
  const v1::ResizeRequest slow = Request(Jpeg(1000, 1000), 9000, 9000);
  const v1::ResizeRequest quick = Request(Jpeg(16, 16), 8, 8);
  // Probe with quick calls while the slow call holds the only thread: they are
  // refused at once. A probe may win the race for the thread, refusing the
  // slow call instead; then the slow call is sent again. Bounded in count.
  // A refusal only counts if the slow call it raced then succeeds: a quick
  // probe can also be refused for the moment the previous probe's thread
  // takes to return to the pool, while a refused slow call's answer is still
  // on its way. Then the round starts over (bounded).
  std::unique_ptr<PendingCall<v1::ResizeResponse>> slow_call;
  bool exhausted = false;
  for (int round = 0; round < 20 && !exhausted; ++round) {
    slow_call = nullptr;
    for (int i = 0; i < 500 && !exhausted; ++i) {
      if (slow_call == nullptr || slow_call->Done()) {
        if (slow_call != nullptr) {
          ASSERT_EQ(slow_call->status().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
              << "the slow call finished before any probe was refused";
        }
        slow_call = std::make_unique<PendingCall<v1::ResizeResponse>>();
        worker.stub().async()->Resize(&slow_call->context, &slow, &slow_call->response,
                                       slow_call->Completion());
      }
      v1::ResizeResponse response;
      grpc::Status status = worker.Call(quick, &response);
      if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && !slow_call->Done()) {
        exhausted = true;
      } else if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ASSERT_TRUE(status.ok()) << status.error_message();
      }
    }
    ASSERT_TRUE(slow_call->Wait(absl::Seconds(60)));
    if (!slow_call->status().ok()) exhausted = false;
  }
  EXPECT_TRUE(exhausted);
  EXPECT_TRUE(slow_call->status().ok()) << slow_call->status().error_message();
  EXPECT_EQ(slow_call->response.image().width(), 9000);
  // Free again once the slow call is done. The client may see the slow
  // answer a moment before the worker thread returns to the pool, so a few
  // immediate refusals are allowed (bounded, no sleeping).
  grpc::Status after;
  for (int i = 0; i < 1000; ++i) {
    v1::ResizeResponse response;
    after = worker.Call(quick, &response);
    if (after.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
  }
  EXPECT_TRUE(after.ok()) << after.error_message();
}

// --- hostile input (issue 10) ---------------------------------------------------

std::string Reason(const grpc::Status& status) { return ErrorReason(FromGrpcStatus(status)); }

// Peak resident set (VmHWM) of process `pid`, in bytes; -1 if unknown.
int64_t PeakRssOf(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

// The two desync files of issue 10 (16x16 in the header check, 12000x12000
// and 32768x32768 for libjpeg) made resize peak at 3.1 GB and succeed.
TEST(ResizeHostileTest, DesyncJpegIsRefusedBeforeAllocatingPixels) {
  ResizeWorker worker;
  for (uint16_t side : {12000, 32768}) {
    const std::string hostile = hostile::HideBehindStuffedZero(
        hostile::WithFrameSize(hostile::RealJpeg(64, 48), side, side), 16, 16);
    v1::ResizeResponse response;
    grpc::Status status = worker.Call(Request(hostile, 8, 8), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(Reason(status), "NOT_AN_IMAGE") << status.error_message();
    EXPECT_EQ(BadRequestField(status), "image.data");
  }
  const int64_t peak = PeakRssOf(worker.process().pid());
  ASSERT_GT(peak, 0);
  // 12000x12000 BGR alone is 432 MB (32768x32768: 3.2 GB); the margin leaves
  // room for a sanitizer build's larger baseline.
  EXPECT_LT(peak, int64_t{400} << 20);
}

TEST_F(ResizeServiceTest, ScanBombIsRefusedWithTooManyScans) {
  v1::ResizeResponse response;
  grpc::Status status = worker_->Call(Request(hostile::ScanBomb(256, 256, 10000), 64, 64),
                                      &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(Reason(status), "TOO_MANY_SCANS") << status.error_message();
}

TEST(ResizeHostileTest, MaxScansFlagAndEnvironment) {
  const std::string progressive = hostile::RealJpeg(64, 48, /*progressive=*/true);  // 10 scans
  {
    ResizeWorker worker({"--max-scans", "9"});
    v1::ResizeResponse response;
    EXPECT_EQ(Reason(worker.Call(Request(progressive, 8, 8), &response)), "TOO_MANY_SCANS");
  }
  ResizeWorker worker({}, {"CONVEYOR_MAX_SCANS=10"});
  v1::ResizeResponse response;
  grpc::Status status = worker.Call(Request(progressive, 8, 8), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// With the scan limit out of the way, the decode of a scan bomb still stops
// at the call's deadline: the only worker thread is free again long before
// the decode would have ended (bounded retries, no sleeping).
TEST(ResizeHostileTest, DeadlineStopsADecodeInProgress) {
  ResizeWorker worker({"--max-scans", "65535", "--worker-threads", "1", "--max-queued", "0"});
  const v1::ResizeRequest bomb = Request(hostile::ScanBomb(2048, 2048, 60000), 64, 64);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    v1::ResizeResponse response;
    grpc::Status status = worker.stub().Resize(&ctx, bomb, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  }
  const absl::Time start = absl::Now();
  grpc::Status after;
  for (int i = 0; i < 100000 && absl::Now() - start < absl::Seconds(5); ++i) {
    v1::ResizeResponse response;
    after = worker.Call(Request(Jpeg(16, 16), 8, 8), &response);
    if (after.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
  }
  EXPECT_TRUE(after.ok()) << "worker still busy with the bomb: " << after.error_message();
}

// Issue 10: a request that does not parse got UNIMPLEMENTED with an empty
// message (gRPC 1.51's typed handler answers before our code runs). The
// method is registered raw and parses the bytes itself (RunRawUnary).
TEST_F(ResizeServiceTest, UnparseableRequestIsInvalidArgument) {
  auto channel = grpc::CreateChannel(worker_->address(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  const std::string garbage("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11);
  grpc::Slice slice(garbage);
  grpc::ByteBuffer request(&slice, 1);
  auto call = stub.PrepareUnaryCall(&ctx, "/conveyor.v1.ResizeStage/Resize", request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("conveyor.v1.ResizeRequest"), std::string::npos)
      << status.error_message();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST(ResizeServiceFlagsTest, SigtermExitsZero) {
  ResizeWorker worker;
  worker.process().Signal(SIGTERM);
  EXPECT_EQ(worker.process().Wait(absl::Seconds(20)), 0);
}

}  // namespace
}  // namespace conveyor::stages::resize
