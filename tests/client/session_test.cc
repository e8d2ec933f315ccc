// Every call the CLI makes carries the bearer token: unary, WatchChain,
// StreamSubmitChain and `batch`, over plaintext and over TLS. The verbs run
// in-process against a fake orchestrator on 127.0.0.1 that records the
// `authorization` header of each call.
#include "client/session.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "client/commands.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/test_ca.h"

namespace conveyor::client {
namespace {

using ::conveyor::testing::TempDir;
using ::testing::AllOf;
using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

// Answers as a server whose chains all succeed at once; records, per
// method, the authorization header of each call ("" when absent). With
// `required_token` set, anything else is UNAUTHENTICATED. CancelChain is
// always PERMISSION_DENIED for want of chains.cancel.
class RecordingOrchestrator final : public v1::Orchestrator::Service {
 public:
  explicit RecordingOrchestrator(std::string required_token)
      : required_token_(std::move(required_token)) {}

  std::map<std::string, std::vector<std::string>> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

  grpc::Status SubmitChain(grpc::ServerContext* context, const v1::SubmitChainRequest*,
                           v1::Chain* chain) override {
    if (grpc::Status s = Check(context, "SubmitChain"); !s.ok()) return s;
    Fill(chain, v1::PENDING);
    return grpc::Status::OK;
  }
  grpc::Status StreamSubmitChain(grpc::ServerContext* context,
                                 grpc::ServerReader<v1::SubmitChainChunk>* reader,
                                 v1::Chain* chain) override {
    v1::SubmitChainChunk chunk;
    while (reader->Read(&chunk)) {
    }
    if (grpc::Status s = Check(context, "StreamSubmitChain"); !s.ok()) return s;
    Fill(chain, v1::PENDING);
    return grpc::Status::OK;
  }
  grpc::Status GetChain(grpc::ServerContext* context, const v1::GetChainRequest*,
                        v1::Chain* chain) override {
    if (grpc::Status s = Check(context, "GetChain"); !s.ok()) return s;
    Fill(chain, v1::SUCCEEDED);
    return grpc::Status::OK;
  }
  grpc::Status WatchChain(grpc::ServerContext* context, const v1::WatchChainRequest*,
                          grpc::ServerWriter<v1::ChainEvent>* writer) override {
    if (grpc::Status s = Check(context, "WatchChain"); !s.ok()) return s;
    v1::ChainEvent event;
    event.set_event_id("1-0");
    event.set_type(v1::ChainEvent::CHAIN_SUCCEEDED);
    event.set_chain_state(v1::SUCCEEDED);
    writer->Write(event);
    return grpc::Status::OK;
  }
  grpc::Status CancelChain(grpc::ServerContext* context, const v1::CancelChainRequest*,
                           v1::Chain*) override {
    if (grpc::Status s = Check(context, "CancelChain"); !s.ok()) return s;
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "caller tester lacks scope chains.cancel");
  }

 private:
  static void Fill(v1::Chain* chain, v1::State state) {
    chain->set_name("chains/0123456789abcdef0123456789abcdef");
    chain->set_state(state);
  }

  grpc::Status Check(grpc::ServerContext* context, const std::string& method) {
    const auto& metadata = context->client_metadata();
    const auto found = metadata.find("authorization");
    const std::string value =
        found == metadata.end() ? "" : std::string(found->second.data(), found->second.size());
    {
      absl::MutexLock lock(&mu_);
      seen_[method].push_back(value);
    }
    if (!required_token_.empty() && value != "Bearer " + required_token_) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or unknown bearer token");
    }
    return grpc::Status::OK;
  }

  const std::string required_token_;
  absl::Mutex mu_;
  std::map<std::string, std::vector<std::string>> seen_ ABSL_GUARDED_BY(mu_);
};

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The process's own environment must not lend a token: resolve in a
    // home of the test's own.
    ::unsetenv("CONVEYOR_TOKEN");
    ::unsetenv("CONVEYOR_TOKEN_FILE");
    ::unsetenv("XDG_CONFIG_HOME");
    ::setenv("HOME", dir_.path().c_str(), 1);
    image_ = dir_.path() + "/a.jpg";
    std::ofstream(image_) << "not really a jpeg: the fake never decodes it";
  }

  void Start(
      const std::string& required_token,
      std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials()) {
    service_ = std::make_unique<RecordingOrchestrator>(required_token);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", std::move(credentials), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    global_.server = conveyor::testing::LoopbackAddress(port);
    global_.timeout = "10s";
    global_.insecure = true;
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // submit --file --wait (StreamSubmitChain, WatchChain, GetChain), get,
  // watch, and a batch of a URL and a file (SubmitChain and the rest).
  void RunEveryKindOfCall() {
    SubmitOptions submit;
    submit.file = image_;
    submit.chain.steps.resize = "10x";
    submit.wait = true;
    EXPECT_EQ(RunSubmit(global_, submit), kExitOk);
    EXPECT_EQ(RunGet(global_, "chains/0123456789abcdef0123456789abcdef"), kExitOk);
    WatchOptions watch;
    watch.chain = "chains/0123456789abcdef0123456789abcdef";
    EXPECT_EQ(RunWatch(global_, watch), kExitOk);
    const std::string items = dir_.path() + "/items.txt";
    std::ofstream(items) << "http://127.0.0.1:9/a.jpg\n" << image_ << "\n";
    BatchOptions batch;
    batch.input = items;
    batch.chain.steps.resize = "10x";
    batch.concurrency = 2;
    EXPECT_EQ(RunBatch(global_, batch), kExitOk);
  }

  // Every method the verbs call, each with the header of every call.
  void ExpectEveryCallCarried(const std::string& header) {
    const auto seen = service_->seen();
    std::vector<std::string> methods;
    for (const auto& [method, values] : seen) {
      methods.push_back(method);
      EXPECT_THAT(values, Each(header)) << method;
    }
    EXPECT_THAT(methods,
                UnorderedElementsAre("SubmitChain", "StreamSubmitChain", "GetChain", "WatchChain"));
  }

  TempDir dir_;
  std::string image_;
  std::unique_ptr<RecordingOrchestrator> service_;
  std::unique_ptr<grpc::Server> server_;
  GlobalOptions global_;
};

TEST_F(SessionTest, EveryCallCarriesTheTokenOverPlaintext) {
  Start("tok-1");
  global_.token = "tok-1";
  RunEveryKindOfCall();
  ExpectEveryCallCarried("Bearer tok-1");
}

TEST_F(SessionTest, EveryCallCarriesTheTokenOverTls) {
  absl::StatusOr<conveyor::testing::TestCa> ca =
      conveyor::testing::TestCa::Create(dir_.path(), "ca");
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<conveyor::testing::TestCert> cert = ca->Issue("orchestrator", {"IP:127.0.0.1"});
  ASSERT_TRUE(cert.ok()) << cert.status();
  const auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  grpc::SslServerCredentialsOptions tls;
  tls.pem_key_cert_pairs.push_back({read(cert->key), read(cert->cert)});
  Start("tok-2", grpc::SslServerCredentials(tls));
  global_.insecure = false;
  global_.tls_ca = ca->cert();
  global_.token = "tok-2";
  RunEveryKindOfCall();
  ExpectEveryCallCarried("Bearer tok-2");
}

TEST_F(SessionTest, TokenFromTheDefaultFileIsSent) {
  Start("tok-3");
  const std::string path = dir_.path() + "/.config/conveyor/token";
  std::filesystem::create_directories(dir_.path() + "/.config/conveyor");
  std::ofstream(path) << "tok-3\n";
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  RunEveryKindOfCall();
  ExpectEveryCallCarried("Bearer tok-3");
}

TEST_F(SessionTest, NoTokenSendsNoHeader) {
  Start("");
  RunEveryKindOfCall();
  ExpectEveryCallCarried("");
}

TEST_F(SessionTest, RefusedCallPrintsTheHintAndExitsRpcError) {
  Start("right");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunGet(global_, "chains/x"), kExitRpcError);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, AllOf(HasSubstr("error: UNAUTHENTICATED: missing or unknown bearer token"),
                         HasSubstr("hint: no token was sent"),
                         HasSubstr(dir_.path() + "/.config/conveyor/token")));

  global_.token = "wrong";
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunGet(global_, "chains/x"), kExitRpcError);
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, AllOf(HasSubstr("hint: the server did not accept the token from --token "),
                         Not(HasSubstr("wrong"))));
}

TEST_F(SessionTest, MissingScopeGetsTheScopeHint) {
  Start("tok");
  global_.token = "tok";
  BulkOptions cancel;
  cancel.chain = "chains/x";
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunCancel(global_, cancel), kExitRpcError);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              AllOf(HasSubstr("error: PERMISSION_DENIED: caller tester lacks scope chains.cancel"),
                    HasSubstr("hint: the token from --token lacks scope chains.cancel")));
}

TEST_F(SessionTest, BatchSaysTheHintOnce) {
  Start("right");
  const std::string items = dir_.path() + "/items.txt";
  std::ofstream(items) << "http://127.0.0.1:9/a.jpg\nhttp://127.0.0.1:9/b.jpg\n";
  BatchOptions batch;
  batch.input = items;
  batch.concurrency = 2;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunBatch(global_, batch), kExitChainFailed);
  const std::string err = ::testing::internal::GetCapturedStderr();
  const size_t first = err.find("hint: no token was sent");
  ASSERT_NE(first, std::string::npos) << err;
  EXPECT_EQ(err.find("hint:", first + 1), std::string::npos) << err;
}

TEST_F(SessionTest, TooOpenTokenFileIsAUsageErrorAndCallsNothing) {
  Start("");
  const std::string path = dir_.path() + "/token";
  std::ofstream(path) << "tok\n";
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  global_.token_file = path;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunGet(global_, "chains/x"), kExitUsage);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              AllOf(HasSubstr("error: --token-file: permissions 0644"), HasSubstr("chmod 600")));
  EXPECT_THAT(service_->seen(), IsEmpty());
}

}  // namespace
}  // namespace conveyor::client
