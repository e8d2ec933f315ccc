// Starts the real conveyor-webhook binary on loopback and delivers to a real
// HTTP receiver on 127.0.0.1 that verifies the Standard Webhooks signature
// with the reference receiver's check (VerifyWebhook; its own test checks it
// against the specification's test vector).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "common/grpc_status.h"
#include "common/status_details.h"
#include "tests/testing/command_runner.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/process_fixture.h"
#include "stages/webhook/signature.h"
#include "tests/testing/stage_worker.h"
#include "tests/testing/webhook_secrets_file.h"

namespace conveyor::stages::webhook {
namespace {

using ::conveyor::testing::HttpTestServer;
using ::conveyor::testing::LoopbackAddress;
using ::conveyor::testing::PickFreePort;
using ::conveyor::testing::ScopedProcess;
using ::conveyor::testing::StageWorker;
using ::conveyor::testing::kTestWebhookSecret;
using ::conveyor::testing::TempDir;
using ::conveyor::testing::WebhookSecretsFile;

// What a receiver saw, and whether the signature verified.
struct Received {
  std::string path;
  std::string id;
  std::string timestamp;
  std::string body;
  bool signature_valid = false;
};

// The receiver's check, as a Standard Webhooks consumer does it.
bool VerifySignature(const std::string& id, const std::string& timestamp, const std::string& body,
                     const std::string& header) {
  const std::string secrets[] = {kTestWebhookSecret};
  return VerifyWebhook(secrets, {id, timestamp, header}, body, absl::Minutes(5)).ok();
}

class WebhookWorker {
 public:
  // With `flags` and the secrets file of kTestWebhookSecret for "default".
  explicit WebhookWorker(std::vector<std::string> flags)
      : worker_("conveyor-webhook", WithSecrets(std::move(flags), secrets_)) {
    EXPECT_TRUE(worker_.ready().ok()) << worker_.ready();
  }

  grpc::Status Deliver(const std::string& url, int step, int attempt,
                       v1::WebhookResponse* response, const std::string& chain = "chains/hook42") {
    v1::WebhookRequest request;
    request.mutable_context()->set_chain(chain);
    request.mutable_context()->set_step_index(step);
    request.mutable_context()->set_attempt(attempt);
    request.mutable_spec()->set_url(url);
    request.mutable_report()->set_chain("chains/hook42");
    (*request.mutable_report()->mutable_labels())["origin"] = "test";
    auto* image = request.mutable_report()->add_outputs()->mutable_image();
    image->set_media_type("image/png");
    image->set_width(20);
    image->set_height(30);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return worker_.stub().Deliver(&ctx, request, response);
  }

 private:
  static std::vector<std::string> WithSecrets(std::vector<std::string> flags,
                                              const WebhookSecretsFile& secrets) {
    for (const std::string& flag : secrets.Flags()) flags.push_back(flag);
    return flags;
  }

  WebhookSecretsFile secrets_;
  StageWorker<v1::WebhookStage> worker_;
};

std::string Reason(const grpc::Status& status) { return ErrorReason(FromGrpcStatus(status)); }

class WebhookServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    state_ = new State();
    server_ = new HttpTestServer();
    // Each path answers with the statuses queued for it (then 200).
    server_->http().Post(R"(/hook/(\w+))", [](const httplib::Request& req, httplib::Response& res) {
      Received received;
      received.path = req.path;
      received.id = req.get_header_value("webhook-id");
      received.timestamp = req.get_header_value("webhook-timestamp");
      received.body = req.body;
      received.signature_valid = VerifySignature(received.id, received.timestamp, req.body,
                                                 req.get_header_value("webhook-signature"));
      int status = 200;
      {
        absl::MutexLock lock(&state_->mu);
        auto& queue = state_->answers[req.path];
        if (!queue.empty()) {
          status = queue.front();
          queue.pop_front();
        }
        state_->received.push_back(received);
      }
      if (req.path == "/hook/slow") server_->SleepUnlessStopping(absl::Seconds(30));
      res.status = status;
      res.set_content(received.signature_valid ? "ok" : "bad signature", "text/plain");
    });
    server_->Start();
    worker_ = new WebhookWorker({"--allow-cidr", "127.0.0.1/32", "--total-timeout", "1s"});
    strict_ = new WebhookWorker({});
  }

  static void TearDownTestSuite() {
    delete strict_;
    delete worker_;
    delete server_;
    delete state_;
  }

  static void Answer(const std::string& path, std::vector<int> statuses) {
    absl::MutexLock lock(&state_->mu);
    state_->answers[path].assign(statuses.begin(), statuses.end());
  }

  static std::vector<Received> ReceivedOn(const std::string& path) {
    absl::MutexLock lock(&state_->mu);
    std::vector<Received> out;
    for (const Received& r : state_->received) {
      if (r.path == path) out.push_back(r);
    }
    return out;
  }

  struct State {
    absl::Mutex mu;
    std::map<std::string, std::deque<int>> answers ABSL_GUARDED_BY(mu);
    std::vector<Received> received ABSL_GUARDED_BY(mu);
  };
  static State* state_;
  static HttpTestServer* server_;
  static WebhookWorker* worker_;
  static WebhookWorker* strict_;
};

WebhookServiceTest::State* WebhookServiceTest::state_ = nullptr;
HttpTestServer* WebhookServiceTest::server_ = nullptr;
WebhookWorker* WebhookServiceTest::worker_ = nullptr;
WebhookWorker* WebhookServiceTest::strict_ = nullptr;

TEST_F(WebhookServiceTest, DeliversSignedEnvelope) {
  v1::WebhookResponse response;
  grpc::Status status = worker_->Deliver(server_->Url("/hook/ok"), 3, 1, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.delivery().delivery_id(), "msg_hook42_3");
  EXPECT_EQ(response.delivery().http_status(), 200);
  EXPECT_EQ(response.delivery().attempts(), 1);
  EXPECT_TRUE(response.delivery().has_latency());

  auto received = ReceivedOn("/hook/ok");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_TRUE(received[0].signature_valid);
  EXPECT_EQ(received[0].id, "msg_hook42_3");
  int64_t timestamp = 0;
  ASSERT_TRUE(absl::SimpleAtoi(received[0].timestamp, &timestamp));
  EXPECT_LT(std::abs(absl::ToUnixSeconds(absl::Now()) - timestamp), 60);

  google::protobuf::Struct body;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(received[0].body, &body).ok());
  EXPECT_EQ(body.fields().at("type").string_value(), "chain.report");
  const auto& data = body.fields().at("data").struct_value().fields();
  EXPECT_EQ(data.at("chain").string_value(), "chains/hook42");
  EXPECT_EQ(data.at("labels").struct_value().fields().at("origin").string_value(), "test");
}

TEST_F(WebhookServiceTest, RetryAfter500ReusesTheWebhookId) {
  Answer("/hook/flaky", {500});
  v1::WebhookResponse first;
  grpc::Status failed = worker_->Deliver(server_->Url("/hook/flaky"), 2, 1, &first);
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::UNAVAILABLE) << failed.error_message();
  EXPECT_TRUE(absl::StrContains(failed.error_message(), "500")) << failed.error_message();

  v1::WebhookResponse second;
  grpc::Status delivered = worker_->Deliver(server_->Url("/hook/flaky"), 2, 2, &second);
  ASSERT_TRUE(delivered.ok()) << delivered.error_message();
  EXPECT_EQ(second.delivery().attempts(), 2);
  EXPECT_EQ(second.delivery().http_status(), 200);

  auto received = ReceivedOn("/hook/flaky");
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].id, "msg_hook42_2");
  EXPECT_EQ(received[1].id, received[0].id);
  EXPECT_TRUE(received[0].signature_valid);
  EXPECT_TRUE(received[1].signature_valid);
}

TEST_F(WebhookServiceTest, ClientErrorIsFailedPreconditionWithTheStatus) {
  for (int code : {400, 401, 404, 410, 422}) {
    const std::string path = absl::StrCat("/hook/client", code);
    Answer(path, {code});
    v1::WebhookResponse response;
    grpc::Status status = worker_->Deliver(server_->Url(path), 1, 1, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << code;
    EXPECT_TRUE(absl::StrContains(status.error_message(), absl::StrCat(code)))
        << status.error_message();
    EXPECT_EQ(Reason(status), "HTTP_STATUS");
  }
}

TEST_F(WebhookServiceTest, RetryableStatusesAreUnavailable) {
  for (int code : {408, 429, 502, 503}) {
    const std::string path = absl::StrCat("/hook/retry", code);
    Answer(path, {code});
    v1::WebhookResponse response;
    grpc::Status status = worker_->Deliver(server_->Url(path), 1, 1, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << code;
  }
}

TEST_F(WebhookServiceTest, RedirectIsNotFollowed) {
  Answer("/hook/moved", {308});
  v1::WebhookResponse response;
  grpc::Status status = worker_->Deliver(server_->Url("/hook/moved"), 1, 1, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
}

TEST_F(WebhookServiceTest, SlowReceiverIsDeadlineExceeded) {
  v1::WebhookResponse response;
  grpc::Status status = worker_->Deliver(server_->Url("/hook/slow"), 1, 1, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
}

TEST_F(WebhookServiceTest, ConnectionRefusedIsUnavailable) {
  v1::WebhookResponse response;
  grpc::Status status = worker_->Deliver(
      absl::StrCat("http://127.0.0.1:", PickFreePort(), "/hook/x"), 1, 1, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(WebhookServiceTest, BadUrlIsInvalidArgument) {
  for (const char* url : {"", "ftp://127.0.0.1/hook", "hook/ok"}) {
    v1::WebhookResponse response;
    grpc::Status status = worker_->Deliver(url, 1, 1, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << url;
    EXPECT_TRUE(absl::StartsWith(status.error_message(), "spec.url:")) << status.error_message();
  }
}

// Issue 10: a CRLF in context.chain went into the webhook-id header and
// injected "X-Injected: yes" and a second Host into the POST.
TEST_F(WebhookServiceTest, ChainWithCrLfIsRefusedBeforeAnyRequest) {
  for (const std::string& chain :
       {std::string("chains/x\r\nX-Injected: yes\r\nHost: evil.test"), std::string("chains/a b"),
        std::string("chains/"), std::string("chains/../x"), std::string("other/abc"),
        std::string("chains/") + std::string(65, 'a')}) {
    v1::WebhookResponse response;
    grpc::Status status = worker_->Deliver(server_->Url("/hook/injected"), 1, 1, &response, chain);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(conveyor::testing::BadRequestField(status), "context.chain") << status.error_message();
    EXPECT_EQ(Reason(status), "INVALID_CHAIN_NAME");
    // The message shows the control bytes escaped, never raw.
    EXPECT_EQ(status.error_message().find('\r'), std::string::npos);
  }
  EXPECT_TRUE(ReceivedOn("/hook/injected").empty());
}

TEST_F(WebhookServiceTest, OverLongUrlIsRefusedNamingTheField) {
  v1::WebhookResponse response;
  const std::string url = server_->Url("/hook/") + std::string(9000, 'a');
  grpc::Status status = worker_->Deliver(url, 1, 1, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(conveyor::testing::BadRequestField(status), "spec.url");
  EXPECT_EQ(Reason(status), "FIELD_TOO_LONG");
  EXPECT_LT(status.error_message().size(), 200u) << "the URL must not be echoed";
}

TEST_F(WebhookServiceTest, DefaultGuardRefusesLoopback) {
  for (const char* host : {"127.0.0.1", "127.1", "[::1]", "localhost"}) {
    v1::WebhookResponse response;
    grpc::Status status = strict_->Deliver(server_->Url("/hook/never", host), 1, 1, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << host << ": " << status.error_message();
    EXPECT_EQ(Reason(status), "DESTINATION_BLOCKED");
  }
  EXPECT_TRUE(ReceivedOn("/hook/never").empty());
}

TEST(WebhookHttpsTest, DeliversOverHttpsWithTheGivenCa) {
  TempDir dir;
  ::conveyor::testing::TlsFiles tls;
  ASSERT_TRUE(::conveyor::testing::WriteSelfSignedCertificate(dir.path(), tls).ok());
  HttpTestServer receiver(tls);
  absl::Notification verified;
  receiver.http().Post("/hook", [&verified](const httplib::Request& req, httplib::Response& res) {
    if (VerifySignature(req.get_header_value("webhook-id"),
                        req.get_header_value("webhook-timestamp"), req.body,
                        req.get_header_value("webhook-signature"))) {
      verified.Notify();
    }
    res.status = 204;
  });
  receiver.Start();
  WebhookWorker worker({"--allow-cidr", "127.0.0.1/32", "--ca-file", tls.cert_path});
  v1::WebhookResponse response;
  grpc::Status status = worker.Deliver(receiver.Url("/hook"), 0, 1, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.delivery().http_status(), 204);
  EXPECT_TRUE(verified.HasBeenNotified());
}

TEST(WebhookStartupTest, RefusesToStartWithoutAValidSecretsFile) {
  TempDir dir;
  const std::string log = absl::StrCat(dir.path(), "/webhook.log");
  auto start = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {CONVEYOR_BIN_DIR "/conveyor-webhook", "--listen",
                                     LoopbackAddress(PickFreePort())};
    argv.insert(argv.end(), flags.begin(), flags.end());
    ScopedProcess worker(argv, log);
    return worker.Wait(absl::Seconds(20));
  };
  EXPECT_NE(start({}), 0);  // --secrets-file is required
  // Secrets never go in argv: the old flag is gone.
  EXPECT_EQ(start({"--secret", kTestWebhookSecret}), 2);
  EXPECT_EQ(start({"--secrets-file", dir.path() + "/missing"}), 2);
  // A placeholder shipped in deploy/ (k8s/secrets.yaml) and a malformed line.
  WebhookSecretsFile placeholder("default whsec_Y2hhbmdlLW1lLWNoYW5nZS1tZS1jaGFuZ2UtbWU=\n");
  EXPECT_EQ(start(placeholder.Flags()), 2);
  WebhookSecretsFile malformed("default whsec_not*base64!\n");
  EXPECT_EQ(start(malformed.Flags()), 2);
  // The refusals name the flag and the line, never a secret.
  const std::string text = ::conveyor::testing::ReadFile(log);
  EXPECT_TRUE(absl::StrContains(text, "--secrets-file")) << text;
  EXPECT_TRUE(absl::StrContains(text, "placeholder")) << text;
  EXPECT_TRUE(absl::StrContains(text, "line 1")) << text;
  EXPECT_FALSE(absl::StrContains(text, "Y2hhbmdl")) << text;
  EXPECT_FALSE(absl::StrContains(text, "not*base64")) << text;
  // Nor does --help show one.
  ::conveyor::testing::CommandResult help =
      ::conveyor::testing::RunCommand({CONVEYOR_BIN_DIR "/conveyor-webhook", "--help"},
                                      absl::Seconds(20));
  EXPECT_TRUE(absl::StrContains(help.out, "--secrets-file")) << help.out;
  EXPECT_FALSE(absl::StrContains(help.out, "--secret ")) << help.out;
}

}  // namespace
}  // namespace conveyor::stages::webhook
