// --tls-client-name: which certificate properties name a peer.
#include "common/allowed_peer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace conveyor {
namespace {

using ::testing::HasSubstr;

TEST(AllowedPeerTest, MatchesSanDnsUriOrCommonName) {
  EXPECT_TRUE(CheckPeerName({{"x509_subject_alternative_name", "orchestrator"}}, "orchestrator")
                  .ok());
  EXPECT_TRUE(CheckPeerName({{"peer_dns", "orchestrator"}}, "orchestrator").ok());
  EXPECT_TRUE(CheckPeerName({{"peer_uri", "spiffe://conveyor/orchestrator"}},
                            "spiffe://conveyor/orchestrator")
                  .ok());
  EXPECT_TRUE(CheckPeerName({{"x509_common_name", "orchestrator"}}, "orchestrator").ok());
}

TEST(AllowedPeerTest, OtherNamesArePermissionDenied) {
  absl::Status status = CheckPeerName(
      {{"x509_common_name", "conveyor-cli"}, {"x509_subject_alternative_name", "localhost"},
       {"transport_security_type", "orchestrator"}},
      "orchestrator");
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr("\"orchestrator\" (--tls-client-name)"));
  EXPECT_THAT(status.message(), HasSubstr("conveyor-cli, localhost"));
}

TEST(AllowedPeerTest, NoCertificateIsPermissionDenied) {
  absl::Status status = CheckPeerName({}, "orchestrator");
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr("without a client certificate"));
}

TEST(AllowedPeerTest, HealthAndReflectionAreOpen) {
  EXPECT_TRUE(IsOpenMethod("/grpc.health.v1.Health/Check"));
  EXPECT_TRUE(IsOpenMethod("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
  EXPECT_FALSE(IsOpenMethod("/conveyor.v1.WebhookStage/Deliver"));
  EXPECT_FALSE(IsOpenMethod(""));
}

}  // namespace
}  // namespace conveyor
