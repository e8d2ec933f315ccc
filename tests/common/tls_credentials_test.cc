// The TLS flags' checks at start: missing files, bad PEM, a key that is not
// the certificate's, flag combinations; each message names the flag and file.
#include "common/tls_credentials.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>

#include "tests/testing/process_fixture.h"
#include "tests/testing/test_ca.h"

namespace conveyor {
namespace {

using ::testing::HasSubstr;

class TlsCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::TestCa> ca = testing::TestCa::Create(dir_.path(), "ca");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::make_unique<testing::TestCa>(*std::move(ca));
    absl::StatusOr<testing::TestCert> server = ca_->Issue("server", {"DNS:localhost"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    absl::StatusOr<testing::TestCert> other = ca_->Issue("other", {"DNS:localhost"});
    ASSERT_TRUE(other.ok()) << other.status();
    other_ = *other;
  }

  std::string Write(const std::string& name, const std::string& text) {
    return testing::WriteFile(dir_.path() + "/" + name, text);
  }

  ServerTlsOptions Server() const {
    ServerTlsOptions options;
    options.cert_file = server_.cert;
    options.key_file = server_.key;
    return options;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::TestCa> ca_;
  testing::TestCert server_;
  testing::TestCert other_;
};

TEST_F(TlsCredentialsTest, NeitherTlsNorInsecureIsRefused) {
  absl::Status status = CheckServerTls(ServerTlsOptions{});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("pass --tls-cert and --tls-key"));
  EXPECT_THAT(status.message(), HasSubstr("--insecure"));
}

TEST_F(TlsCredentialsTest, InsecureAloneIsPlaintext) {
  ServerTlsOptions options;
  options.insecure = true;
  EXPECT_TRUE(CheckServerTls(options).ok());
  EXPECT_FALSE(ServerUsesTls(options));
}

TEST_F(TlsCredentialsTest, TlsFlagsWinOverInsecure) {
  ServerTlsOptions options = Server();
  options.insecure = true;
  EXPECT_TRUE(CheckServerTls(options).ok());
  EXPECT_TRUE(ServerUsesTls(options));
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_NE(*credentials, nullptr);
}

TEST_F(TlsCredentialsTest, MissingCertificateFileNamesFlagAndPath) {
  ServerTlsOptions options = Server();
  options.cert_file = dir_.path() + "/nope.pem";
  absl::Status status = CheckServerTls(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--tls-cert: cannot read \"" + options.cert_file));
}

TEST_F(TlsCredentialsTest, BadPemNamesFlagAndPath) {
  ServerTlsOptions options = Server();
  options.cert_file = Write("bad.pem", "not a certificate\n");
  absl::Status status = CheckServerTls(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("--tls-cert: \"" + options.cert_file + "\" holds no PEM certificate"));
  options = Server();
  options.key_file =
      Write("bad.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  status = CheckServerTls(options);
  EXPECT_THAT(status.message(), HasSubstr("--tls-key: \"" + options.key_file +
                                          "\" holds no unencrypted PEM private key"));
  options = Server();
  options.client_ca_file = Write("bad-ca.pem", "");
  status = CheckServerTls(options);
  EXPECT_THAT(status.message(), HasSubstr("--tls-client-ca: \"" + options.client_ca_file));
}

TEST_F(TlsCredentialsTest, KeyOfAnotherCertificateIsRefused) {
  ServerTlsOptions options = Server();
  options.key_file = other_.key;
  absl::Status status = CheckServerTls(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("is not the private key of --tls-cert"));
}

TEST_F(TlsCredentialsTest, CertificateNeedsItsKey) {
  ServerTlsOptions options = Server();
  options.key_file.clear();
  EXPECT_THAT(CheckServerTls(options).message(), HasSubstr("--tls-cert needs --tls-key"));
  options = ServerTlsOptions{};
  options.client_ca_file = ca_->cert();
  EXPECT_THAT(CheckServerTls(options).message(),
              HasSubstr("--tls-client-ca needs --tls-cert and --tls-key"));
}

TEST_F(TlsCredentialsTest, ClientNameNeedsClientCa) {
  ServerTlsOptions options = Server();
  options.allowed_client_name = "orchestrator";
  EXPECT_THAT(CheckServerTls(options).message(),
              HasSubstr("--tls-client-name needs --tls-client-ca"));
  options.client_ca_file = ca_->cert();
  EXPECT_TRUE(CheckServerTls(options).ok());
  EXPECT_TRUE(MakeServerCredentials(options).ok());
}

TEST_F(TlsCredentialsTest, ChannelPlaintextOnlyWithInsecureAndNoTlsFlag) {
  ChannelTlsOptions options;
  options.insecure = true;
  absl::StatusOr<ChannelSecurity> security = MakeChannelSecurity(options);
  ASSERT_TRUE(security.ok());
  EXPECT_FALSE(security->tls);
  options.ca_file = ca_->cert();
  security = MakeChannelSecurity(options);
  ASSERT_TRUE(security.ok());
  EXPECT_TRUE(security->tls);
}

TEST_F(TlsCredentialsTest, ChannelWithoutCaUsesSystemRootsOrIsRefused) {
  ChannelTlsOptions options;
  absl::StatusOr<ChannelSecurity> security = MakeChannelSecurity(options);
  ASSERT_TRUE(security.ok());
  EXPECT_TRUE(security->tls);
  options.system_roots_allowed = false;
  options.ca_flag = "--worker-tls-ca";
  security = MakeChannelSecurity(options);
  EXPECT_EQ(security.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(security.status().message(), HasSubstr("pass --worker-tls-ca"));
  EXPECT_THAT(security.status().message(), HasSubstr("--insecure"));
}

TEST_F(TlsCredentialsTest, ChannelFlagsAreCheckedLikeTheServers) {
  ChannelTlsOptions options;
  options.ca_file = dir_.path() + "/missing-ca.pem";
  EXPECT_THAT(MakeChannelSecurity(options).status().message(),
              HasSubstr("--tls-ca: cannot read \"" + options.ca_file));
  options.ca_file = ca_->cert();
  options.cert_file = server_.cert;
  options.key_file = other_.key;
  EXPECT_THAT(MakeChannelSecurity(options).status().message(),
              HasSubstr("is not the private key of --tls-cert"));
}

TEST(ReloadIntervalTest, WholeSecondsAtLeastOne) {
  EXPECT_EQ(ReloadIntervalSeconds(absl::Milliseconds(10)), 1u);
  EXPECT_EQ(ReloadIntervalSeconds(absl::Seconds(60)), 60u);
}

}  // namespace
}  // namespace conveyor
