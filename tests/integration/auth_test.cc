// Caller identity end to end: a real redis-server and conveyor-orchestrator
// processes with a tokens file, JWT keys or mTLS client certificates made
// at test time. Refusals (no token, bad token, missing scope), tenant
// isolation through every RPC, the "*" operator, a tokens file edited while
// the server runs, JWTs, cert: identities, and the refusal to start without
// a source of caller identity.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/tls_credentials.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/orchestrator/auth/tokens_fixture.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/test_ca.h"
#include "tests/testing/test_jwt.h"

namespace conveyor {
namespace {

using ::conveyor::testing::TokensFileLine;
using ::conveyor::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kBin = CONVEYOR_BIN_DIR;
const std::string kAlice = "alice-token-3b8f0c2d9e7a6b5c4d3e2f1a0b9c8d7e";    // tenant-a, all
const std::string kBob = "bob-token-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";        // tenant-b, all
const std::string kReader = "reader-token-0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c";  // tenant-a, read
const std::string kOps = "ops-token-5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f";        // *, no submit

// Replaces `path` atomically, as an operator's editor or Kubernetes does.
// A call's context: a deadline, and "authorization: Bearer <token>" unless
// `token` is empty (`header` other than empty replaces the whole value).
std::unique_ptr<grpc::ClientContext> As(const std::string& token, const std::string& header = "") {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!header.empty()) {
    context->AddMetadata("authorization", header);
  } else if (!token.empty()) {
    context->AddMetadata("authorization", "Bearer " + token);
  }
  return context;
}

// A chain that stays unfinished: its download stage points where nothing
// listens, so the step waits for the stage (--max-outage).
v1::SubmitChainRequest WaitingChain(const std::string& idempotency_key = "") {
  v1::SubmitChainRequest request;
  request.mutable_spec()->add_steps()->mutable_download()->set_url("http://127.0.0.1:9/a.jpg");
  request.set_idempotency_key(idempotency_key);
  return request;
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(
        tokens_,
        absl::StrCat(
            "# tests/integration/auth_test.cc\n",
            TokensFileLine(kAlice, "alice tenant-a chains.submit,chains.read,chains.cancel,admin"),
            TokensFileLine(kBob, "bob tenant-b chains.submit,chains.read,chains.cancel,admin"),
            TokensFileLine(kReader, "reader tenant-a chains.read"),
            TokensFileLine(kOps, "ops * chains.read,chains.cancel,admin")));
  }
  void TearDown() override { testing::DumpLogs(logs_, HasFailure(), 6000); }

  // An orchestrator with `flags` (its auth flags: the fixture adds none).
  std::unique_ptr<testing::OrchestratorProcess> Start(std::vector<std::string> flags) {
    logs_.push_back(absl::StrCat(dir_.path(), "/orchestrator-", logs_.size(), ".log"));
    auto process = std::make_unique<testing::OrchestratorProcess>(
        redis_.url(), std::map<std::string, std::string>{}, flags, logs_.back());
    EXPECT_TRUE(process->ready().ok()) << process->ready();
    return process;
  }
  std::unique_ptr<testing::OrchestratorProcess> StartWithTokens() {
    return Start({"--tokens-file", tokens_});
  }

  grpc::Status Submit(v1::Orchestrator::Stub& stub, const std::string& token,
                      const v1::SubmitChainRequest& request, v1::Chain* chain) {
    return stub.SubmitChain(As(token).get(), request, chain);
  }
  grpc::Status Get(v1::Orchestrator::Stub& stub, const std::string& token, const std::string& name,
                   v1::Chain* chain = nullptr) {
    v1::Chain ignored;
    v1::GetChainRequest request;
    request.set_name(name);
    return stub.GetChain(As(token).get(), request, chain == nullptr ? &ignored : chain);
  }
  grpc::Status Cancel(v1::Orchestrator::Stub& stub, const std::string& token,
                      const std::string& name) {
    v1::Chain chain;
    v1::CancelChainRequest request;
    request.set_name(name);
    return stub.CancelChain(As(token).get(), request, &chain);
  }
  grpc::Status Retry(v1::Orchestrator::Stub& stub, const std::string& token,
                     const std::string& name) {
    v1::Chain chain;
    v1::RetryChainRequest request;
    request.set_name(name);
    return stub.RetryChain(As(token).get(), request, &chain);
  }
  // How a WatchChain stream ends (after any events).
  grpc::Status Watch(v1::Orchestrator::Stub& stub, const std::string& token,
                     const std::string& name) {
    auto context = As(token);
    v1::WatchChainRequest request;
    request.set_name(name);
    std::unique_ptr<grpc::ClientReader<v1::ChainEvent>> reader =
        stub.WatchChain(context.get(), request);
    v1::ChainEvent event;
    // A chain the caller may see streams until it ends: stop after its
    // history, which is enough to know the stream was admitted.
    if (reader->Read(&event)) {
      context->TryCancel();
      while (reader->Read(&event)) {
      }
      reader->Finish().IgnoreError();
      return grpc::Status::OK;
    }
    return reader->Finish();
  }
  std::set<std::string> List(v1::Orchestrator::Stub& stub, const std::string& token) {
    v1::ListChainsRequest request;
    request.set_page_size(100);
    v1::ListChainsResponse response;
    grpc::Status status = stub.ListChains(As(token).get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::set<std::string> names;
    for (const v1::Chain& chain : response.chains()) names.insert(chain.name());
    return names;
  }
  std::set<std::string> PurgeDryRun(v1::Orchestrator::Stub& stub, const std::string& token) {
    v1::PurgeChainsRequest request;
    request.set_state(v1::CANCELLED);
    request.set_dry_run(true);
    v1::PurgeChainsResponse response;
    grpc::Status status = stub.PurgeChains(As(token).get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.purged_names().begin(), response.purged_names().end()};
  }
  grpc::Status SystemStatus(v1::Orchestrator::Stub& stub, const std::string& token,
                            const std::string& header = "") {
    v1::SystemStatus status;
    return stub.GetSystemStatus(As(token, header).get(), v1::GetSystemStatusRequest(), &status);
  }

  testing::RedisServer redis_;
  testing::TempDir dir_;
  const std::string tokens_ = dir_.path() + "/tokens";
  std::vector<std::string> logs_;
};

TEST_F(AuthTest, NoTokenBadTokenAndMalformedHeaderAreUnauthenticated) {
  auto orchestrator = StartWithTokens();
  v1::Orchestrator::Stub& stub = orchestrator->stub();
  const grpc::Status none = SystemStatus(stub, "");
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(none.error_message(), HasSubstr("no credentials"));
  const grpc::Status bad = SystemStatus(stub, "guessed-token-1234567890");
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(bad.error_message(), HasSubstr("unknown bearer token"));
  EXPECT_THAT(bad.error_message(), Not(HasSubstr("guessed-token")));
  const grpc::Status basic = SystemStatus(stub, "", "Basic YWxpY2U6cHc=");
  EXPECT_EQ(basic.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(basic.error_message(), HasSubstr("malformed authorization header"));
  v1::Chain chain;
  EXPECT_EQ(Submit(stub, "", WaitingChain(), &chain).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Watch(stub, "", "chains/0123456789abcdef0123456789abcdef").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // Health stays open to callers without a token.
  EXPECT_TRUE(testing::WaitForGrpcServing(orchestrator->address(), absl::Seconds(5)).ok());
  // The good token works, and its call's log line names the caller.
  ASSERT_TRUE(SystemStatus(stub, kAlice).ok());
  const std::string log = testing::ReadFile(logs_.back());
  EXPECT_THAT(log, HasSubstr("rpc=conveyor.v1.Orchestrator/GetSystemStatus code=OK"));
  EXPECT_THAT(log, HasSubstr("principal=alice tenant=tenant-a"));
  EXPECT_THAT(log, HasSubstr("code=UNAUTHENTICATED"));
  EXPECT_THAT(log, Not(HasSubstr("guessed-token")));
  EXPECT_THAT(log, Not(HasSubstr(kAlice)));
}

TEST_F(AuthTest, TokenWithoutTheScopeIsPermissionDenied) {
  auto orchestrator = StartWithTokens();
  v1::Orchestrator::Stub& stub = orchestrator->stub();
  v1::Chain chain;
  ASSERT_TRUE(Submit(stub, kAlice, WaitingChain(), &chain).ok());
  // reader (chains.read) sees tenant-a's chain, and may do nothing else.
  EXPECT_TRUE(Get(stub, kReader, chain.name()).ok());
  const grpc::Status cancel = Cancel(stub, kReader, chain.name());
  EXPECT_EQ(cancel.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(cancel.error_message(),
            "this call needs scope \"chains.cancel\"; principal \"reader\" has chains.read");
  EXPECT_EQ(Retry(stub, kReader, chain.name()).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::Chain other;
  const grpc::Status submit = Submit(stub, kReader, WaitingChain(), &other);
  EXPECT_EQ(submit.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(submit.error_message(), HasSubstr("\"chains.submit\""));
  v1::PurgeChainsResponse purged;
  v1::PurgeChainsRequest purge;
  purge.set_dry_run(true);
  EXPECT_EQ(stub.PurgeChains(As(kReader).get(), purge, &purged).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // The operator of every tenant cannot submit (it owns no chains).
  EXPECT_EQ(Submit(stub, kOps, WaitingChain(), &other).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Nothing was cancelled by the refusals.
  v1::Chain now;
  ASSERT_TRUE(Get(stub, kAlice, chain.name(), &now).ok());
  EXPECT_NE(now.state(), v1::CANCELLED);
}

TEST_F(AuthTest, TenantsSeeAndTouchOnlyTheirOwnChainsAndStarSeesAll) {
  auto orchestrator = StartWithTokens();
  v1::Orchestrator::Stub& stub = orchestrator->stub();
  v1::Chain a, b;
  ASSERT_TRUE(Submit(stub, kAlice, WaitingChain("sku-1"), &a).ok());
  ASSERT_TRUE(Submit(stub, kBob, WaitingChain("other"), &b).ok());
  EXPECT_EQ(a.tenant(), "tenant-a");
  EXPECT_EQ(a.principal(), "alice");

  // bob (tenant-b) cannot reach alice's chain by any verb: NOT_FOUND, as
  // for a chain that does not exist, so names do not leak either.
  EXPECT_EQ(Get(stub, kBob, a.name()).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Watch(stub, kBob, a.name()).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Cancel(stub, kBob, a.name()).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Retry(stub, kBob, a.name()).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Watch(stub, kAlice, a.name()).ok());
  EXPECT_EQ(List(stub, kBob), std::set<std::string>{b.name()});
  EXPECT_EQ(List(stub, kAlice), std::set<std::string>{a.name()});
  // alice's idempotency key is hers: bob's submit with it makes his own.
  v1::Chain reused;
  ASSERT_TRUE(Submit(stub, kBob, WaitingChain("sku-1"), &reused).ok());
  EXPECT_NE(reused.name(), a.name());
  EXPECT_EQ(reused.tenant(), "tenant-b");
  v1::Chain again;
  ASSERT_TRUE(Submit(stub, kAlice, WaitingChain("sku-1"), &again).ok());
  EXPECT_EQ(again.name(), a.name()) << "the same key for the same tenant is the same chain";

  // Ended chains are purged per tenant.
  ASSERT_TRUE(Cancel(stub, kAlice, a.name()).ok());
  ASSERT_TRUE(Cancel(stub, kBob, b.name()).ok());
  EXPECT_EQ(PurgeDryRun(stub, kBob), std::set<std::string>{b.name()});
  EXPECT_EQ(PurgeDryRun(stub, kAlice), std::set<std::string>{a.name()});

  // The "*" operator sees and acts on every tenant's chains.
  EXPECT_TRUE(Get(stub, kOps, a.name()).ok());
  EXPECT_TRUE(Get(stub, kOps, b.name()).ok());
  EXPECT_EQ(List(stub, kOps), (std::set<std::string>{a.name(), b.name(), reused.name()}));
  EXPECT_EQ(PurgeDryRun(stub, kOps), (std::set<std::string>{a.name(), b.name()}));
  EXPECT_TRUE(Retry(stub, kOps, a.name()).ok());
}

TEST_F(AuthTest, EditedTokensFileTakesEffectWithoutARestart) {
  auto orchestrator = StartWithTokens();
  v1::Orchestrator::Stub& stub = orchestrator->stub();
  const std::string fresh = "fresh-token-6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b";
  ASSERT_EQ(SystemStatus(stub, fresh).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(SystemStatus(stub, kAlice).ok());
  // Rotation: the new token in, alice's out.
  WriteFile(tokens_, TokensFileLine(fresh, "carol tenant-c chains.read"));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!SystemStatus(stub, fresh).ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(SystemStatus(stub, fresh).ok());
  EXPECT_EQ(SystemStatus(stub, kAlice).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A bad edit is logged and changes nothing.
  WriteFile(tokens_, "sha256:not-a-digest carol tenant-c chains.read\n");
  absl::SleepFor(absl::Milliseconds(2500));
  EXPECT_TRUE(SystemStatus(stub, fresh).ok());
  EXPECT_TRUE(orchestrator->process().running());
  EXPECT_THAT(testing::ReadFile(logs_.back()),
              HasSubstr("tokens file changed but is not valid; keeping the previous one"));
}

TEST_F(AuthTest, JwtFromTheConfiguredIssuerIsItsSubject) {
  const testing::TestSigningKey key = testing::TestSigningKey::Ec();
  const testing::TestSigningKey stranger = testing::TestSigningKey::Ec();
  const std::string jwks = dir_.path() + "/jwks.json";
  WriteFile(jwks, testing::Jwks({key.Jwk("k1")}));
  auto orchestrator = Start(
      {"--jwt-keys", jwks, "--jwt-issuer", "https://id.test", "--jwt-audience", "conveyor-test"});
  v1::Orchestrator::Stub& stub = orchestrator->stub();
  const auto claims = [](int64_t exp_offset_s) {
    return absl::StrCat(R"({"sub":"jane","tenant":"tenant-j","iss":"https://id.test",)",
                        R"("aud":"conveyor-test","scope":"chains.submit chains.read","exp":)",
                        absl::ToUnixSeconds(absl::Now()) + exp_offset_s, "}");
  };
  const std::string jwt = key.Sign(R"({"alg":"ES256","kid":"k1"})", claims(300));
  v1::Chain chain;
  ASSERT_TRUE(Submit(stub, jwt, WaitingChain(), &chain).ok());
  EXPECT_EQ(chain.principal(), "jane");
  EXPECT_EQ(chain.tenant(), "tenant-j");
  EXPECT_TRUE(Get(stub, jwt, chain.name()).ok());
  EXPECT_EQ(Cancel(stub, jwt, chain.name()).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  const grpc::Status expired =
      SystemStatus(stub, key.Sign(R"({"alg":"ES256","kid":"k1"})", claims(-120)));
  EXPECT_EQ(expired.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(expired.error_message(), HasSubstr("JWT expired"));
  const grpc::Status forged =
      SystemStatus(stub, stranger.Sign(R"({"alg":"ES256","kid":"k1"})", claims(300)));
  EXPECT_EQ(forged.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(forged.error_message(), HasSubstr("signature does not verify"));
  // Not a JWT, and no tokens file to look it up in.
  EXPECT_EQ(SystemStatus(stub, kAlice).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // The key rotated in the JWKS file: the stranger's tokens now verify.
  WriteFile(jwks, testing::Jwks({stranger.Jwk("k2")}));
  const std::string rotated = stranger.Sign(R"({"alg":"ES256","kid":"k2"})", claims(300));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!SystemStatus(stub, rotated).ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(SystemStatus(stub, rotated).ok());
}

TEST_F(AuthTest, OrchestratorWithoutASourceOfCallerIdentityRefusesToStart) {
  testing::ScopedProcess orchestrator(
      {kBin + "/conveyor-orchestrator", "--listen", "127.0.0.1:0", "--redis-url", redis_.url()},
      dir_.path() + "/refused.log", {"CONVEYOR_ALLOW_ANONYMOUS=0"});
  EXPECT_EQ(orchestrator.Wait(absl::Seconds(10)), 2);
  EXPECT_EQ(testing::ReadFile(orchestrator.log_path()),
            "conveyor-orchestrator: no caller authentication: pass --tokens-file, --jwt-keys "
            "(with --jwt-issuer and --jwt-audience) or --allow-anonymous (docs/security.md, "
            "\"Caller identity\")\n");
  WriteFile(tokens_, "sha256:abc alice default chains.read\n");
  testing::ScopedProcess bad_file(
      {kBin + "/conveyor-orchestrator", "--listen", "127.0.0.1:0", "--tokens-file", tokens_},
      dir_.path() + "/bad-file.log", {"CONVEYOR_ALLOW_ANONYMOUS=0"});
  EXPECT_EQ(bad_file.Wait(absl::Seconds(10)), 2);
  EXPECT_THAT(testing::ReadFile(bad_file.log_path()),
              HasSubstr("--tokens-file: " + tokens_ + ":1: sha256: want 64 lowercase hex"));
}

// mTLS: a client certificate that a cert: line lists is that line's caller
// without a token; another certificate of the same CA is nobody.
TEST_F(AuthTest, ClientCertificateListedInTheTokensFileIsItsCaller) {
  absl::StatusOr<testing::TestCa> ca = testing::TestCa::Create(dir_.path(), "auth-test-ca");
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<testing::TestCert> server =
      ca->Issue("orchestrator", {"DNS:orchestrator", "DNS:localhost", "IP:127.0.0.1"});
  absl::StatusOr<testing::TestCert> robot = ca->Issue("ci-robot", {"DNS:ci-robot"});
  absl::StatusOr<testing::TestCert> other = ca->Issue("other-client", {"DNS:other-client"});
  ASSERT_TRUE(server.ok() && robot.ok() && other.ok());
  WriteFile(tokens_, absl::StrCat("cert:ci-robot ci tenant-c chains.submit,chains.read\n",
                                  TokensFileLine(kAlice, "alice tenant-a chains.read")));
  logs_.push_back(dir_.path() + "/mtls-orchestrator.log");
  testing::ServerProcess orchestrator(
      {kBin + "/conveyor-orchestrator", "--redis-url", redis_.url(), "--tls-cert", server->cert,
       "--tls-key", server->key, "--tls-client-ca", ca->cert(), "--worker-tls-ca", ca->cert(),
       "--tokens-file", tokens_},
      logs_.back(), {"CONVEYOR_INSECURE=0", "CONVEYOR_ALLOW_ANONYMOUS=0"});
  ASSERT_TRUE(orchestrator.started().ok()) << orchestrator.started();

  const auto stub_with = [&](const testing::TestCert& cert) {
    ChannelTlsOptions tls;
    tls.ca_file = ca->cert();
    tls.cert_file = cert.cert;
    tls.key_file = cert.key;
    absl::StatusOr<ChannelSecurity> security = MakeChannelSecurity(tls);
    EXPECT_TRUE(security.ok()) << security.status();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    security->ApplyTo(args);
    return v1::Orchestrator::NewStub(
        grpc::CreateCustomChannel(orchestrator.address(), security->credentials, args));
  };
  auto as_robot = stub_with(*robot);
  auto as_other = stub_with(*other);
  // Until it serves (TLS: the fixture's plaintext health check cannot tell).
  grpc::Status first;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  do {
    first = SystemStatus(*as_robot, "");
    if (first.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  EXPECT_TRUE(first.ok()) << first.error_message();

  v1::Chain chain;
  ASSERT_TRUE(Submit(*as_robot, "", WaitingChain(), &chain).ok());
  EXPECT_EQ(chain.principal(), "ci");
  EXPECT_EQ(chain.tenant(), "tenant-c");
  const grpc::Status nobody = SystemStatus(*as_other, "");
  EXPECT_EQ(nobody.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(nobody.error_message(), HasSubstr("other-client"));
  // A token decides over the certificate: alice of tenant-a does not see
  // the robot's chain.
  EXPECT_EQ(Get(*as_robot, kAlice, chain.name()).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Get(*as_other, kAlice, "chains/0123456789abcdef0123456789abcdef").error_code(),
            grpc::StatusCode::NOT_FOUND)
      << "alice's token, whatever the certificate";
}

}  // namespace
}  // namespace conveyor
