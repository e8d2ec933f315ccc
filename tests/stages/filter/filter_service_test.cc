// Starts the real conveyor-filter binary on loopback and calls it over gRPC.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

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

namespace conveyor::stages::filter {
namespace {

using conveyor::testing::BadRequestField;
using conveyor::testing::PendingCall;
using conveyor::testing::ScopedProcess;
using conveyor::testing::StageWorker;

std::string Png(int width, int height, cv::Scalar color) {
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(".png", cv::Mat(height, width, CV_8UC3, color), bytes));
  return std::string(bytes.begin(), bytes.end());
}

class FilterWorker {
 public:
  explicit FilterWorker(std::vector<std::string> extra_flags = {})
      : worker_("conveyor-filter", std::move(extra_flags)) {
    EXPECT_TRUE(worker_.ready().ok()) << worker_.ready();
  }
  v1::FilterStage::Stub& stub() { return worker_.stub(); }
  ScopedProcess& process() { return worker_.process(); }

  grpc::Status Call(const v1::FilterRequest& request, v1::FilterResponse* response) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return stub().Filter(&ctx, request, response);
  }

 private:
  StageWorker<v1::FilterStage> worker_;
};

v1::FilterOp Invert() {
  v1::FilterOp op;
  op.mutable_invert();
  return op;
}

v1::FilterOp Blur(double sigma) {
  v1::FilterOp op;
  op.mutable_gaussian_blur()->set_sigma(sigma);
  return op;
}

v1::FilterRequest Request(const std::string& data, std::vector<v1::FilterOp> ops) {
  v1::FilterRequest request;
  request.mutable_context()->set_chain("chains/test");
  request.mutable_context()->set_step_index(2);
  request.mutable_context()->set_attempt(1);
  request.mutable_image()->set_data(data);
  for (auto& op : ops) *request.mutable_spec()->add_ops() = std::move(op);
  return request;
}


class FilterServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { worker_ = new FilterWorker(); }
  static void TearDownTestSuite() {
    delete worker_;
    worker_ = nullptr;
  }
  static FilterWorker* worker_;
};
FilterWorker* FilterServiceTest::worker_ = nullptr;

TEST_F(FilterServiceTest, InvertsPng) {
  v1::FilterResponse response;
  grpc::Status status =
      worker_->Call(Request(Png(20, 10, cv::Scalar(10, 20, 30)), {Invert()}), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.image().media_type(), "image/png");
  EXPECT_EQ(response.image().width(), 20);
  EXPECT_EQ(response.image().height(), 10);
  cv::Mat out = cv::imdecode(
      std::vector<uchar>(response.image().data().begin(), response.image().data().end()),
      cv::IMREAD_COLOR);
  ASSERT_EQ(out.size(), cv::Size(20, 10));
  EXPECT_EQ(out.at<cv::Vec3b>(5, 5), cv::Vec3b(245, 235, 225));
}

TEST_F(FilterServiceTest, OutOfRangeSigmaNamesTheField) {
  v1::FilterResponse response;
  grpc::Status status = worker_->Call(
      Request(Png(4, 4, cv::Scalar::all(0)), {Invert(), Invert(), Blur(0)}), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "spec.ops[2].gaussian_blur.sigma: want (0, 100], got 0");
  EXPECT_EQ(BadRequestField(status), "spec.ops[2].gaussian_blur.sigma");
}

TEST_F(FilterServiceTest, NoOpsIsInvalidArgument) {
  v1::FilterResponse response;
  grpc::Status status = worker_->Call(Request(Png(4, 4, cv::Scalar::all(0)), {}), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadRequestField(status), "spec.ops");
}

TEST_F(FilterServiceTest, TooManyOpsIsInvalidArgument) {
  v1::FilterResponse response;
  grpc::Status status = worker_->Call(
      Request(Png(4, 4, cv::Scalar::all(0)), std::vector<v1::FilterOp>(33, Invert())), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadRequestField(status), "spec.ops");
}

TEST_F(FilterServiceTest, EmptyOpIsInvalidArgument) {
  v1::FilterResponse response;
  grpc::Status status = worker_->Call(
      Request(Png(4, 4, cv::Scalar::all(0)), {Invert(), v1::FilterOp()}), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadRequestField(status), "spec.ops[1]");
}

TEST_F(FilterServiceTest, NonImageBytesAreInvalidArgument) {
  v1::FilterResponse response;
  grpc::Status status = worker_->Call(Request("{\"json\": true}", {Invert()}), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "NOT_AN_IMAGE");
}

TEST_F(FilterServiceTest, DecompressionBombIsInvalidArgument) {
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\x01\x86\xa0\0\x01\x86\xa0\x08\x02\0\0\0", 29);
  png += std::string(4, '\0');
  v1::FilterResponse response;
  grpc::Status status = worker_->Call(Request(png, {Invert()}), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "IMAGE_TOO_LARGE");
}

TEST(FilterServiceFlagsTest, MaxPixelsFlagLowersTheLimit) {
  FilterWorker worker({"--max-pixels", "99"});
  v1::FilterResponse response;
  grpc::Status status = worker.Call(Request(Png(10, 10, cv::Scalar::all(0)), {Invert()}),
                                    &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "IMAGE_TOO_LARGE");
}

TEST(FilterServiceFlagsTest, FullWorkerAnswersResourceExhausted) {
  FilterWorker worker({"--worker-threads", "1", "--max-queued", "0"});
  // A slow call: three wide gaussian blurs (301-tap kernels) on 1 MP.
  const v1::FilterRequest slow =
      Request(Png(1000, 1000, cv::Scalar(1, 2, 3)), {Blur(50), Blur(50), Blur(50)});
  const v1::FilterRequest quick = Request(Png(4, 4, cv::Scalar::all(0)), {Invert()});
  // Probes are refused at once while the slow call holds the only thread; if a
  // probe wins the race for the thread the slow call is refused and re-sent.
  std::unique_ptr<PendingCall<v1::FilterResponse>> slow_call;
  bool exhausted = false;
  for (int i = 0; i < 500 && !exhausted; ++i) {
    // A slow call that finished (refused, or done before a probe arrived on a
    // fast machine) is simply sent again; the loop is bounded.
    if (slow_call == nullptr || slow_call->Done()) {
      slow_call = std::make_unique<PendingCall<v1::FilterResponse>>();
      worker.stub().async()->Filter(&slow_call->context, &slow, &slow_call->response,
                                     slow_call->Completion());
    }
    v1::FilterResponse response;
    grpc::Status status = worker.Call(quick, &response);
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && !slow_call->Done()) {
      exhausted = true;
    } else if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
  }
  EXPECT_TRUE(exhausted);
  ASSERT_TRUE(slow_call->Wait(absl::Seconds(90)));
  EXPECT_TRUE(slow_call->status().ok()) << slow_call->status().error_message();
  // Free again once the slow call is done. The client may see the slow
  // answer a moment before the worker thread returns to the pool, so a few
  // immediate refusals are allowed (bounded, no sleeping).
  grpc::Status after;
  for (int i = 0; i < 1000; ++i) {
    v1::FilterResponse response;
    after = worker.Call(quick, &response);
    if (after.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
  }
  EXPECT_TRUE(after.ok()) << after.error_message();
}

TEST(FilterServiceFlagsTest, SigtermExitsZero) {
  FilterWorker worker;
  worker.process().Signal(SIGTERM);
  EXPECT_EQ(worker.process().Wait(absl::Seconds(20)), 0);
}

TEST_F(FilterServiceTest, DesyncJpegAndScanBombAreRefused) {
  v1::FilterResponse response;
  grpc::Status status = worker_->Call(
      Request(hostile::HideBehindStuffedZero(
                  hostile::WithFrameSize(hostile::RealJpeg(64, 48), 12000, 12000), 16, 16),
              {Invert()}),
      &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "NOT_AN_IMAGE");
  status = worker_->Call(Request(hostile::ScanBomb(256, 256, 10000), {Invert()}), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "TOO_MANY_SCANS");
}

TEST(FilterHostileTest, MaxScansFlagLowersTheLimit) {
  FilterWorker worker({"--max-scans", "9"});
  v1::FilterResponse response;
  grpc::Status status = worker.Call(
      Request(hostile::RealJpeg(64, 48, /*progressive=*/true), {Invert()}), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "TOO_MANY_SCANS");
}

}  // namespace
}  // namespace conveyor::stages::filter
