// Every stage worker refuses a StepContext whose chain is not a chain name
// or whose tenant is not a tenant name, with INVALID_ARGUMENT naming the
// field, before any work: one check in the shared unary runner
// (common/step_context.h). Each real binary on loopback, called through a
// generic stub: every stage request has its StepContext as field 1, so one
// serialized request serves all five.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/grpc_status.h"
#include "common/stage_registry.h"
#include "common/status_details.h"
#include "conveyor/v1/stages.pb.h"
#include "tests/testing/stage_worker.h"
#include "tests/testing/webhook_secrets_file.h"

namespace conveyor {
namespace {

using ::conveyor::testing::ServerProcess;
using ::conveyor::testing::WebhookSecretsFile;

grpc::Status CallWithContext(const std::string& address, const StageInfo& stage,
                             const v1::StepContext& context) {
  v1::WebhookRequest request;  // only field 1, which every stage request shares
  *request.mutable_context() = context;
  const std::string bytes = request.SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&ctx, absl::StrCat("/", stage.service, "/", stage.method), grpc::StubOptions(),
                 &request_buffer, &response_buffer, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  return status;
}

class StepContextTest : public ::testing::TestWithParam<v1::StageKind> {
 protected:
  void SetUp() override {
    const StageInfo* stage = FindStage(GetParam());
    ASSERT_NE(stage, nullptr);
    stage_ = *stage;
    std::vector<std::string> argv = {absl::StrCat(CONVEYOR_BIN_DIR, "/conveyor-", stage_.name)};
    if (GetParam() == v1::STAGE_KIND_UPLOAD) {
      argv.insert(argv.end(), {"--file-root", dir_.path()});
    }
    if (GetParam() == v1::STAGE_KIND_WEBHOOK) {
      for (const std::string& flag : secrets_.Flags()) argv.push_back(flag);
    }
    server_ = std::make_unique<ServerProcess>(argv, dir_.path() + "/worker.log");
    ASSERT_TRUE(server_->WaitUntilServing(absl::Seconds(20)).ok()) << server_->started();
  }

  testing::TempDir dir_;
  WebhookSecretsFile secrets_;
  StageInfo stage_{};
  std::unique_ptr<ServerProcess> server_;
};

TEST_P(StepContextTest, ChainThatIsNoChainNameIsInvalidArgument) {
  for (const char* chain :
       {"chains/x\r\nX-Injected: yes", "chains/../etc", "other/abc", "chains/", "chains/a b"}) {
    v1::StepContext context;
    context.set_chain(chain);
    context.set_tenant("acme");
    grpc::Status status = CallWithContext(server_->address(), stage_, context);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(testing::BadRequestField(status), "context.chain") << status.error_message();
    EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "INVALID_CHAIN_NAME");
  }
}

TEST_P(StepContextTest, TenantThatIsNoTenantNameIsInvalidArgument) {
  const std::vector<std::string> tenants = {"acme\nX: y", "a/b", "..", std::string(65, 't')};
  for (const std::string& tenant : tenants) {
    v1::StepContext context;
    context.set_chain("chains/abc123");
    context.set_tenant(tenant);
    grpc::Status status = CallWithContext(server_->address(), stage_, context);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(testing::BadRequestField(status), "context.tenant") << status.error_message();
    EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "INVALID_TENANT_NAME");
    EXPECT_EQ(status.error_message().find('\n'), std::string::npos) << "escaped, never raw";
  }
}

TEST_P(StepContextTest, ValidContextGoesOnToTheSpecChecks) {
  v1::StepContext context;
  context.set_chain("chains/abc123");
  context.set_tenant("acme");
  // No spec: each stage refuses the request, but not for its context.
  grpc::Status status = CallWithContext(server_->address(), stage_, context);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(testing::BadRequestField(status), "context.chain") << status.error_message();
  EXPECT_NE(testing::BadRequestField(status), "context.tenant") << status.error_message();
}

INSTANTIATE_TEST_SUITE_P(EveryStage, StepContextTest,
                         ::testing::Values(v1::STAGE_KIND_DOWNLOAD, v1::STAGE_KIND_RESIZE,
                                           v1::STAGE_KIND_FILTER, v1::STAGE_KIND_UPLOAD,
                                           v1::STAGE_KIND_WEBHOOK),
                         [](const ::testing::TestParamInfo<v1::StageKind>& info) {
                           return std::string(FindStage(info.param)->name);
                         });

}  // namespace
}  // namespace conveyor
