// Per-tenant signing with the real conveyor-webhook binary: a delivery is
// signed with every active secret of the chain's tenant, so during a
// rotation receivers holding the old or the new secret both verify it with
// the reference check (VerifyWebhook), and no other tenant's secret does.
// The secrets file is changed under the running worker.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/status_details.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "stages/webhook/signature.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/stage_worker.h"
#include "tests/testing/webhook_secrets_file.h"

namespace conveyor::stages::webhook {
namespace {

using ::conveyor::testing::HttpTestServer;
using ::conveyor::testing::StageWorker;
using ::conveyor::testing::WebhookSecretsFile;

constexpr char kAcmeOld[] = "whsec_dGVzdC1vbmx5LXdlYmhvb2sta2V5LXRlbmFudC1hY21lLTE=";
constexpr char kAcmeNew[] = "whsec_dGVzdC1vbmx5LXdlYmhvb2sta2V5LXRlbmFudC1hY21lLTI=";
constexpr char kBravo[] = "whsec_dGVzdC1vbmx5LXdlYmhvb2sta2V5LXRlbmFudC1icmF2bw==";

struct Delivery {
  WebhookHeaders headers;
  std::string body;
};

// What a receiver holding `secrets` concludes about `delivery`.
absl::Status Check(std::vector<std::string> secrets, const Delivery& delivery) {
  return VerifyWebhook(secrets, delivery.headers, delivery.body, absl::Minutes(5));
}

class WebhookRotationTest : public ::testing::Test {
 protected:
  WebhookRotationTest() : secrets_(absl::StrCat("acme ", kAcmeOld, "\nbravo ", kBravo, "\n")) {
    receiver_.http().Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      absl::MutexLock lock(&mu_);
      deliveries_.push_back(
          {{req.get_header_value("webhook-id"), req.get_header_value("webhook-timestamp"),
            req.get_header_value("webhook-signature")},
           req.body});
      res.status = 204;
    });
    receiver_.Start();
    std::vector<std::string> flags = {"--allow-cidr", "127.0.0.1/32"};
    for (const std::string& flag : secrets_.Flags()) flags.push_back(flag);
    worker_ = std::make_unique<StageWorker<v1::WebhookStage>>("conveyor-webhook", flags);
    EXPECT_TRUE(worker_->ready().ok()) << worker_->ready();
  }

  // Delivers one report of a chain of `tenant`; the delivery the receiver got.
  grpc::Status Deliver(const std::string& tenant, Delivery* got = nullptr) {
    v1::WebhookRequest request;
    request.mutable_context()->set_chain("chains/rotation1");
    request.mutable_context()->set_tenant(tenant);
    request.mutable_context()->set_step_index(++step_);
    request.mutable_context()->set_attempt(1);
    request.mutable_spec()->set_url(receiver_.Url("/hook"));
    request.mutable_report()->set_chain("chains/rotation1");
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::WebhookResponse response;
    grpc::Status status = worker_->stub().Deliver(&ctx, request, &response);
    absl::MutexLock lock(&mu_);
    if (got != nullptr && !deliveries_.empty()) *got = deliveries_.back();
    return status;
  }

  size_t Received() {
    absl::MutexLock lock(&mu_);
    return deliveries_.size();
  }

  WebhookSecretsFile secrets_;
  HttpTestServer receiver_;
  std::unique_ptr<StageWorker<v1::WebhookStage>> worker_;
  int step_ = 0;
  absl::Mutex mu_;
  std::vector<Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
};

TEST_F(WebhookRotationTest, DuringRotationEitherSecretVerifiesAndNoOtherTenantsDoes) {
  Delivery before;
  grpc::Status status = Deliver("acme", &before);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(Check({kAcmeOld}, before).ok());
  EXPECT_FALSE(Check({kAcmeNew}, before).ok());

  // Rotation starts: the new secret joins the old one in the running worker.
  secrets_.Replace(absl::StrCat("acme ", kAcmeOld, "\nacme ", kAcmeNew, "\nbravo ", kBravo, "\n"));
  Delivery during;
  status = Deliver("acme", &during);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::vector<std::string> signatures = absl::StrSplit(during.headers.signature, ' ');
  EXPECT_EQ(signatures.size(), 2u) << during.headers.signature;
  EXPECT_TRUE(Check({kAcmeOld}, during).ok()) << "a receiver not yet moved over";
  EXPECT_TRUE(Check({kAcmeNew}, during).ok()) << "a receiver already moved over";
  EXPECT_TRUE(Check({kAcmeNew, kAcmeOld}, during).ok());
  // Tenant B's receiver secret does not verify tenant A's delivery.
  absl::Status borrowed = Check({kBravo}, during);
  EXPECT_EQ(borrowed.code(), absl::StatusCode::kUnauthenticated) << borrowed;

  // Rotation ends: the old secret no longer signs.
  secrets_.Replace(absl::StrCat("acme ", kAcmeNew, "\nbravo ", kBravo, "\n"));
  Delivery after;
  status = Deliver("acme", &after);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(Check({kAcmeNew}, after).ok());
  EXPECT_FALSE(Check({kAcmeOld}, after).ok());

  // And tenant B's deliveries carry only tenant B's signature.
  Delivery bravo;
  status = Deliver("bravo", &bravo);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(Check({kBravo}, bravo).ok());
  EXPECT_FALSE(Check({kAcmeNew, kAcmeOld}, bravo).ok());
}

TEST_F(WebhookRotationTest, TenantWithoutASecretIsRefusedNamingTheTenant) {
  for (const char* tenant : {"charlie", ""}) {  // "" is "default": no line for it either
    grpc::Status status = Deliver(tenant);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << tenant;
    const std::string named = *tenant == '\0' ? "default" : tenant;
    EXPECT_TRUE(absl::StrContains(status.error_message(), absl::StrCat("\"", named, "\"")))
        << status.error_message();
    // No secret of another tenant, nor the file's path.
    EXPECT_FALSE(absl::StrContains(status.error_message(), "dGVzdC1vbmx5"))
        << status.error_message();
    EXPECT_FALSE(absl::StrContains(status.error_message(), secrets_.path()))
        << status.error_message();
    EXPECT_EQ(ErrorReason(FromGrpcStatus(status)), "NO_TENANT_SECRET");
  }
  EXPECT_EQ(Received(), 0u);
}

TEST_F(WebhookRotationTest, TenantThatIsNoTenantNameIsInvalidArgument) {
  const std::vector<std::string> tenants = {"acme\r\nX: y", "a/b", std::string(65, 'a')};
  for (const std::string& tenant : tenants) {
    grpc::Status status = Deliver(tenant);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << tenant;
    EXPECT_EQ(conveyor::testing::BadRequestField(status), "context.tenant");
  }
  EXPECT_EQ(Received(), 0u);
}

}  // namespace
}  // namespace conveyor::stages::webhook
