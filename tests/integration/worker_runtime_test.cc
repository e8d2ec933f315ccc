// What every stage worker promises, whatever its stage: server reflection that
// lets grpcurl list and describe everything, grpc.health.v1, and a clean exit
// on SIGTERM. grpcurl is not packaged for Debian 12, so this test asks the
// reflection service exactly what grpcurl would.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/testing/process_fixture.h"

namespace conveyor {
namespace {

using grpc::reflection::v1alpha::ServerReflection;
using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;

struct WorkerCase {
  std::string binary;
  std::string service;
  std::vector<std::string> extra_flags;
};

std::ostream& operator<<(std::ostream& out, const WorkerCase& worker) {
  return out << worker.binary;
}

class WorkerRuntimeTest : public ::testing::TestWithParam<WorkerCase> {
 protected:
  void SetUp() override {
    address_ = testing::LoopbackAddress(testing::PickFreePort());
    std::vector<std::string> argv = {std::string(CONVEYOR_BIN_DIR) + "/" + GetParam().binary,
                                     "--listen", address_};
    for (const auto& flag : GetParam().extra_flags) {
      argv.push_back(flag == "$TMP" ? temp_.path() : flag);
    }
    process_ = std::make_unique<testing::ScopedProcess>(argv, temp_.path() + "/worker.log");
    absl::Status serving = testing::WaitForGrpcServing(address_, absl::Seconds(20));
    ASSERT_TRUE(serving.ok()) << serving << "\n" << testing::ReadFile(process_->log_path());
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  }

  // Sends one reflection request on a fresh stream and returns the answer.
  ServerReflectionResponse Ask(const ServerReflectionRequest& request) {
    auto stub = ServerReflection::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    auto stream = stub->ServerReflectionInfo(&context);
    EXPECT_TRUE(stream->Write(request));
    stream->WritesDone();
    ServerReflectionResponse response;
    EXPECT_TRUE(stream->Read(&response));
    EXPECT_TRUE(stream->Finish().ok());
    return response;
  }

  testing::TempDir temp_;
  std::string address_;
  std::unique_ptr<testing::ScopedProcess> process_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_P(WorkerRuntimeTest, ReflectionListsTheStageHealthAndReflection) {
  ServerReflectionRequest request;
  request.set_list_services("");
  ServerReflectionResponse response = Ask(request);
  std::set<std::string> services;
  for (const auto& service : response.list_services_response().service()) {
    services.insert(service.name());
  }
  EXPECT_TRUE(services.count(GetParam().service)) << GetParam().service;
  EXPECT_TRUE(services.count("grpc.health.v1.Health"));
  EXPECT_TRUE(services.count("grpc.reflection.v1alpha.ServerReflection"));
}

TEST_P(WorkerRuntimeTest, ReflectionResolvesEveryMethodsRequestAndResponse) {
  ServerReflectionRequest request;
  request.set_file_containing_symbol(GetParam().service);
  ServerReflectionResponse response = Ask(request);
  ASSERT_TRUE(response.has_file_descriptor_response())
      << response.error_response().error_message();

  // Build a pool from what the server sent (the file and its dependencies),
  // as grpcurl does, and resolve every type from it alone.
  google::protobuf::SimpleDescriptorDatabase database;
  for (const auto& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(bytes));
    database.Add(file);
  }
  google::protobuf::DescriptorPool pool(&database);
  const auto* service = pool.FindServiceByName(GetParam().service);
  ASSERT_NE(service, nullptr) << GetParam().service;
  ASSERT_GT(service->method_count(), 0);
  for (int i = 0; i < service->method_count(); ++i) {
    const auto* method = service->method(i);
    ASSERT_NE(method->input_type(), nullptr) << method->full_name();
    ASSERT_NE(method->output_type(), nullptr) << method->full_name();
    EXPECT_GT(method->input_type()->field_count(), 0) << method->input_type()->full_name();
    EXPECT_GT(method->output_type()->field_count(), 0) << method->output_type()->full_name();
  }
}

TEST_P(WorkerRuntimeTest, HealthCheckAnswersServing) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_P(WorkerRuntimeTest, SigtermExitsCleanly) {
  process_->Signal(SIGTERM);
  EXPECT_EQ(process_->Wait(absl::Seconds(20)), 0) << testing::ReadFile(process_->log_path());
}

INSTANTIATE_TEST_SUITE_P(
    AllStages, WorkerRuntimeTest,
    ::testing::Values(
        WorkerCase{"conveyor-download", "conveyor.v1.DownloadStage", {}},
        WorkerCase{"conveyor-resize", "conveyor.v1.ResizeStage", {}},
        WorkerCase{"conveyor-filter", "conveyor.v1.FilterStage", {}},
        WorkerCase{"conveyor-upload", "conveyor.v1.UploadStage", {"--file-root", "$TMP"}},
        WorkerCase{"conveyor-webhook", "conveyor.v1.WebhookStage",
                   {"--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}),
    [](const ::testing::TestParamInfo<WorkerCase>& info) {
      std::string name = info.param.binary.substr(std::string("conveyor-").size());
      return name;
    });

}  // namespace
}  // namespace conveyor
