// TLS and mTLS on real processes: workers and the orchestrator serving TLS
// from certificates made at test time (tests/testing/test_ca.h), refusals
// (no client certificate, another CA, plaintext, a non-orchestrator
// certificate at the webhook worker), rotation without restart, the CLI's
// flags and hints, a whole chain over mTLS on every hop, and the refusal to
// start without TLS or --insecure.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/tls_credentials.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/testing/command_runner.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/test_ca.h"
#include "tests/testing/test_images.h"
#include "tests/testing/webhook_secrets_file.h"

namespace conveyor {
namespace {

using ::conveyor::testing::CommandResult;
using ::conveyor::testing::RunCommand;
using ::conveyor::testing::ServerProcess;
using ::conveyor::testing::TestCa;
using ::conveyor::testing::TestCert;
using ::testing::HasSubstr;

const std::string kBin = CONVEYOR_BIN_DIR;
const std::vector<std::string> kLocalSans = {"DNS:localhost", "IP:127.0.0.1"};

std::vector<std::string> Sans(const std::string& name) {
  std::vector<std::string> sans = {"DNS:" + name};
  sans.insert(sans.end(), kLocalSans.begin(), kLocalSans.end());
  return sans;
}

// A client's TLS options: trust `ca`, present `client` if given.
ChannelTlsOptions ClientTls(const std::string& ca, const TestCert* client = nullptr) {
  ChannelTlsOptions options;
  options.ca_file = ca;
  if (client != nullptr) {
    options.cert_file = client->cert;
    options.key_file = client->key;
  }
  return options;
}

std::shared_ptr<grpc::Channel> Channel(const std::string& address, const ChannelTlsOptions& tls) {
  absl::StatusOr<ChannelSecurity> security = MakeChannelSecurity(tls);
  EXPECT_TRUE(security.ok()) << security.status();
  if (!security.ok()) return nullptr;
  grpc::ChannelArguments args;
  // A channel of its own each time: no shared subchannel, no inherited backoff.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  security->ApplyTo(args);
  return grpc::CreateCustomChannel(address, security->credentials, args);
}

// One health Check("") over a new channel with `tls`.
grpc::Status HealthCheck(const std::string& address, const ChannelTlsOptions& tls,
                         const std::string& service = "") {
  auto stub = grpc::health::v1::Health::NewStub(Channel(address, tls));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (status.ok() && response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "NOT_SERVING");
  }
  return status;
}

absl::Status WaitServing(const std::string& address, const ChannelTlsOptions& tls) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  grpc::Status last;
  while (absl::Now() < deadline) {
    last = HealthCheck(address, tls);
    if (last.ok()) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(address, " not serving over TLS: ", last.error_message()));
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestCa> ca = TestCa::Create(dir_.path(), "conveyor-test-ca");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::make_unique<TestCa>(*std::move(ca));
    std::filesystem::create_directories(dir_.path() + "/other");
    absl::StatusOr<TestCa> other = TestCa::Create(dir_.path() + "/other", "other-ca");
    ASSERT_TRUE(other.ok()) << other.status();
    other_ca_ = std::make_unique<TestCa>(*std::move(other));
    orchestrator_ = Issue(*ca_, "orchestrator");
    cli_ = Issue(*ca_, "conveyor-cli");
    stranger_ = Issue(*other_ca_, "orchestrator");  // the right name, the wrong CA
  }

  void TearDown() override { conveyor::testing::DumpLogs(logs_, HasFailure(), 4000); }

  TestCert Issue(const TestCa& ca, const std::string& name) {
    absl::StatusOr<TestCert> cert = ca.Issue(name, Sans(name));
    EXPECT_TRUE(cert.ok()) << cert.status();
    return cert.ok() ? *cert : TestCert{};
  }

  std::string Log(const std::string& name) {
    logs_.push_back(dir_.path() + "/" + name + ".log");
    return logs_.back();
  }

  // `binary` serving TLS with a certificate of its own name; mTLS unless
  // `mtls` is false. `flags` follow.
  std::unique_ptr<ServerProcess> StartServer(const std::string& binary, const std::string& name,
                                             std::vector<std::string> flags = {},
                                             bool mtls = true) {
    const TestCert cert = Issue(*ca_, name);
    std::vector<std::string> argv = {kBin + "/" + binary, "--tls-cert", cert.cert, "--tls-key",
                                     cert.key, "--tls-reload-interval", "1s"};
    if (mtls) argv.insert(argv.end(), {"--tls-client-ca", ca_->cert()});
    argv.insert(argv.end(), flags.begin(), flags.end());
    // CONVEYOR_INSECURE=0: no plaintext fallback hides a TLS mistake here.
    auto server = std::make_unique<ServerProcess>(argv, Log(name), std::vector<std::string>{
                                                                       "CONVEYOR_INSECURE=0"});
    EXPECT_TRUE(server->started().ok()) << server->started();
    return server;
  }

  std::vector<std::string> CliTlsFlags() const {
    return {"--tls-ca", ca_->cert(), "--tls-cert", cli_.cert, "--tls-key", cli_.key};
  }

  conveyor::testing::TempDir dir_;
  std::unique_ptr<TestCa> ca_;
  std::unique_ptr<TestCa> other_ca_;
  TestCert orchestrator_;
  TestCert cli_;
  TestCert stranger_;
  std::vector<std::string> logs_;
};

TEST_F(TlsTest, ServerWithoutTlsFlagsOrInsecureRefusesToStart) {
  conveyor::testing::ScopedProcess worker({kBin + "/conveyor-resize", "--listen", "127.0.0.1:0"},
                                          Log("resize"), {"CONVEYOR_INSECURE=0"});
  EXPECT_EQ(worker.Wait(absl::Seconds(10)), 2);
  EXPECT_THAT(conveyor::testing::ReadFile(worker.log_path()),
              HasSubstr("pass --tls-cert and --tls-key (and --tls-client-ca for mTLS), or "
                        "--insecure"));
}

TEST_F(TlsTest, InsecureServerLogsAWarning) {
  ServerProcess worker({kBin + "/conveyor-resize", "--insecure"}, Log("resize"),
                       {"CONVEYOR_INSECURE=0"});
  ASSERT_TRUE(worker.started().ok()) << worker.started();
  ASSERT_TRUE(worker.WaitUntilServing().ok());
  EXPECT_THAT(conveyor::testing::ReadFile(worker.process().log_path()),
              HasSubstr("level=warn msg=\"--insecure: serving plaintext"));
}

TEST_F(TlsTest, ServerWithAnUnreadableCertificateNamesTheFlag) {
  conveyor::testing::ScopedProcess worker(
      {kBin + "/conveyor-resize", "--listen", "127.0.0.1:0", "--tls-cert",
       dir_.path() + "/missing.pem", "--tls-key", orchestrator_.key},
      Log("resize"), {"CONVEYOR_INSECURE=0"});
  EXPECT_EQ(worker.Wait(absl::Seconds(10)), 2);
  EXPECT_THAT(conveyor::testing::ReadFile(worker.log_path()),
              HasSubstr("--tls-cert: cannot read \"" + dir_.path() + "/missing.pem\""));
}

TEST_F(TlsTest, TlsCallWorksWithTheCaAndPlaintextFails) {
  auto worker = StartServer("conveyor-resize", "resize", {}, /*mtls=*/false);
  ASSERT_TRUE(WaitServing(worker->address(), ClientTls(ca_->cert())).ok());
  // Reflection (what grpcurl needs) and per-service health work over TLS.
  EXPECT_TRUE(HealthCheck(worker->address(), ClientTls(ca_->cert()), "conveyor.v1.ResizeStage")
                  .ok());
  ChannelTlsOptions plaintext;
  plaintext.insecure = true;
  EXPECT_EQ(HealthCheck(worker->address(), plaintext).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // The CA of another deployment does not vouch for this server.
  EXPECT_EQ(HealthCheck(worker->address(), ClientTls(other_ca_->cert())).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MtlsRefusesNoClientCertificateAndAnotherCas) {
  auto worker = StartServer("conveyor-resize", "resize");
  ASSERT_TRUE(WaitServing(worker->address(), ClientTls(ca_->cert(), &cli_)).ok());
  EXPECT_EQ(HealthCheck(worker->address(), ClientTls(ca_->cert())).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(HealthCheck(worker->address(), ClientTls(ca_->cert(), &stranger_)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, RotatedServerCertificateIsServedWithoutRestart) {
  auto worker = StartServer("conveyor-resize", "resize", {}, /*mtls=*/false);
  ASSERT_TRUE(WaitServing(worker->address(), ClientTls(ca_->cert())).ok());
  const std::string before = conveyor::testing::ServedCertificate(worker->address(), ca_->cert());
  ASSERT_THAT(before, HasSubstr("CN = resize"));
  // A new key and certificate over the same files, with another CN.
  ASSERT_TRUE(ca_->Issue("resize-rotated", Sans("resize"), "resize").ok());
  std::string after = before;
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (after == before && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
    after = conveyor::testing::ServedCertificate(worker->address(), ca_->cert());
  }
  EXPECT_THAT(after, HasSubstr("CN = resize-rotated"));
  EXPECT_NE(after, before);
  EXPECT_TRUE(worker->process().running());
  EXPECT_TRUE(HealthCheck(worker->address(), ClientTls(ca_->cert())).ok());
}

TEST_F(TlsTest, WebhookWorkerServesOnlyTheOrchestratorsCertificate) {
  conveyor::testing::WebhookSecretsFile secrets;
  auto worker = StartServer("conveyor-webhook", "webhook",
                            {"--tls-client-name", "orchestrator", "--secrets-file",
                             secrets.path()});
  // Health stays open to any certificate of the CA.
  ASSERT_TRUE(WaitServing(worker->address(), ClientTls(ca_->cert(), &cli_)).ok());
  v1::WebhookRequest request;
  request.mutable_context()->set_chain("chains/0123456789abcdef0123456789abcdef");
  request.mutable_context()->set_tenant("default");
  const auto deliver = [&](const TestCert& client) {
    auto stub = v1::WebhookStage::NewStub(Channel(worker->address(), ClientTls(ca_->cert(),
                                                                               &client)));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::WebhookResponse response;
    return stub->Deliver(&context, request, &response);
  };
  const grpc::Status refused = deliver(cli_);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(refused.error_message(), HasSubstr("\"orchestrator\" (--tls-client-name)"));
  EXPECT_THAT(refused.error_message(), HasSubstr("conveyor-cli"));
  // The orchestrator's certificate gets through to the stage, which then
  // judges the request itself (no URL here).
  const grpc::Status accepted = deliver(orchestrator_);
  EXPECT_NE(accepted.error_code(), grpc::StatusCode::PERMISSION_DENIED) << accepted.error_message();
  EXPECT_NE(accepted.error_code(), grpc::StatusCode::UNAVAILABLE) << accepted.error_message();
}

TEST_F(TlsTest, WorkerNameCheckNeedsAClientCa) {
  conveyor::testing::WebhookSecretsFile secrets;
  const TestCert cert = Issue(*ca_, "webhook");
  conveyor::testing::ScopedProcess worker(
      {kBin + "/conveyor-webhook", "--listen", "127.0.0.1:0", "--tls-cert", cert.cert,
       "--tls-key", cert.key, "--tls-client-name", "orchestrator", "--secrets-file",
       secrets.path()},
      Log("webhook"), {"CONVEYOR_INSECURE=0"});
  EXPECT_EQ(worker.Wait(absl::Seconds(10)), 2);
  EXPECT_THAT(conveyor::testing::ReadFile(worker.log_path()),
              HasSubstr("--tls-client-name needs --tls-client-ca"));
}

TEST_F(TlsTest, OrchestratorWithoutWorkerCaOrInsecureRefusesToStart) {
  conveyor::testing::ScopedProcess orchestrator(
      {kBin + "/conveyor-orchestrator", "--listen", "127.0.0.1:0", "--tls-cert",
       orchestrator_.cert, "--tls-key", orchestrator_.key},
      Log("orchestrator"), {"CONVEYOR_INSECURE=0"});
  EXPECT_EQ(orchestrator.Wait(absl::Seconds(10)), 2);
  EXPECT_THAT(conveyor::testing::ReadFile(orchestrator.log_path()),
              HasSubstr("worker channels: no TLS: pass --worker-tls-ca"));
}

// The whole stack on mTLS: five workers that serve only the orchestrator,
// the orchestrator serving the CLI's certificate and calling the workers
// with its own, and the CLI submitting a five-step chain.
TEST_F(TlsTest, FullChainRunsWithMtlsOnEveryHop) {
  conveyor::testing::RedisServer redis;
  conveyor::testing::WebhookSecretsFile secrets;
  const std::string image = conveyor::testing::NoiseJpeg(64, 48);
  conveyor::testing::HttpTestServer http;
  std::atomic<int> hooks{0};
  http.http().Get("/img.jpg", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(image, "image/jpeg");
  });
  http.http().Post("/hook", [&](const httplib::Request&, httplib::Response& res) {
    ++hooks;
    res.status = 200;
  });
  http.Start();
  const std::string out_dir = dir_.path() + "/out";
  std::filesystem::create_directories(out_dir);

  const std::vector<std::string> only_orchestrator = {"--tls-client-name", "orchestrator"};
  std::vector<std::unique_ptr<ServerProcess>> workers;
  const auto worker = [&](const std::string& name, std::vector<std::string> flags) {
    flags.insert(flags.end(), only_orchestrator.begin(), only_orchestrator.end());
    workers.push_back(StartServer("conveyor-" + name, name, flags));
    EXPECT_TRUE(WaitServing(workers.back()->address(), ClientTls(ca_->cert(), &orchestrator_))
                    .ok());
    return workers.back()->address();
  };
  std::vector<std::string> orchestrator_flags = {
      "--redis-url", redis.url(),
      "--download-target", worker("download", {"--allow-private-networks"}),
      "--resize-target", worker("resize", {}),
      "--filter-target", worker("filter", {}),
      "--upload-target", worker("upload", {"--file-root", out_dir}),
      "--webhook-target",
      worker("webhook", {"--allow-private-networks", "--secrets-file", secrets.path()}),
      "--worker-tls-ca", ca_->cert(), "--worker-tls-cert", orchestrator_.cert,
      "--worker-tls-key", orchestrator_.key};
  // Its server certificate is the one it presents to workers, too.
  std::vector<std::string> argv = {kBin + "/conveyor-orchestrator",
                                   "--tls-cert", orchestrator_.cert,
                                   "--tls-key", orchestrator_.key,
                                   "--tls-client-ca", ca_->cert()};
  argv.insert(argv.end(), orchestrator_flags.begin(), orchestrator_flags.end());
  ServerProcess orchestrator(argv, Log("orchestrator"), {"CONVEYOR_INSECURE=0"});
  ASSERT_TRUE(orchestrator.started().ok()) << orchestrator.started();
  ASSERT_TRUE(WaitServing(orchestrator.address(), ClientTls(ca_->cert(), &cli_)).ok());

  std::vector<std::string> cli = {kBin + "/conveyor", "--server", orchestrator.address()};
  for (const std::string& flag : CliTlsFlags()) cli.push_back(flag);
  const std::vector<std::string> submit = {
      "submit",  "--url",    http.Url("/img.jpg"), "--resize", "32x",
      "--filter", "grayscale", "--upload", "file://" + out_dir, "--webhook",
      http.Url("/hook"), "--wait"};
  cli.insert(cli.end(), submit.begin(), submit.end());
  const CommandResult submitted = RunCommand(cli, absl::Seconds(60), {"CONVEYOR_INSECURE=0"});
  EXPECT_EQ(submitted.exit_code, 0) << submitted.out << submitted.err;
  EXPECT_THAT(submitted.out, HasSubstr("SUCCEEDED"));
  EXPECT_EQ(hooks.load(), 1);
  EXPECT_FALSE(std::filesystem::is_empty(out_dir));

  // The CLI without its certificate: refused by mTLS, with a hint.
  const CommandResult no_cert =
      RunCommand({kBin + "/conveyor", "--server", orchestrator.address(), "--tls-ca", ca_->cert(),
                  "--timeout", "5s", "list"},
                 absl::Seconds(30), {"CONVEYOR_INSECURE=0"});
  EXPECT_EQ(no_cert.exit_code, 3) << no_cert.err;
  EXPECT_THAT(no_cert.err, HasSubstr("error: UNAVAILABLE"));
  EXPECT_THAT(no_cert.err, HasSubstr("hint: "));
}

TEST_F(TlsTest, PlaintextCliToTlsServerFailsWithAHint) {
  conveyor::testing::RedisServer redis;
  auto orchestrator = StartServer("conveyor-orchestrator", "orchestrator",
                                  {"--redis-url", redis.url(), "--insecure"}, /*mtls=*/false);
  ASSERT_TRUE(WaitServing(orchestrator->address(), ClientTls(ca_->cert())).ok());
  const std::string server = orchestrator->address();
  const auto cli = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {kBin + "/conveyor", "--server", server, "--timeout", "5s"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back("list");
    return RunCommand(argv, absl::Seconds(30), {"CONVEYOR_INSECURE=0"});
  };
  const CommandResult plaintext = cli({"--insecure"});
  EXPECT_EQ(plaintext.exit_code, 3) << plaintext.err;
  EXPECT_THAT(plaintext.err, HasSubstr("hint: "));
  EXPECT_THAT(plaintext.err, HasSubstr("--tls-ca"));
  // No --tls-ca: the system roots do not know the test CA.
  const CommandResult unknown_ca = cli({});
  EXPECT_EQ(unknown_ca.exit_code, 3) << unknown_ca.err;
  EXPECT_THAT(unknown_ca.err, HasSubstr("--tls-ca"));
  // The CA, and a name the certificate does not carry.
  const CommandResult wrong_name = cli({"--tls-ca", ca_->cert(), "--tls-server-name", "other"});
  EXPECT_EQ(wrong_name.exit_code, 3) << wrong_name.err;
  EXPECT_THAT(wrong_name.err, HasSubstr("--tls-server-name"));
  // And right: TLS with the CA (the server does not ask for a certificate).
  const CommandResult ok = cli({"--tls-ca", ca_->cert()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  const CommandResult named =
      cli({"--tls-ca", ca_->cert(), "--tls-server-name", "orchestrator"});
  EXPECT_EQ(named.exit_code, 0) << named.err;
}

}  // namespace
}  // namespace conveyor
