// The dashboard's HTTP endpoints end to end: a real redis-server and
// conveyor-orchestrator with a tokens file and --http-listen, called with a
// real HTTP client (cpp-httplib) on 127.0.0.1: the pages and their headers,
// 401/403/200 by token and scope, the login cookie, tenants, CSRF on
// actions, and a chain's server-sent events arriving live (submitted and
// cancelled over gRPC while the stream is open).
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "tests/orchestrator/auth/tokens_fixture.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/process_fixture.h"

namespace conveyor {
namespace {

using ::conveyor::testing::TokensFileLine;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kUser = "user-token-3b8f0c2d9e7a6b5c4d3e2f1a0b9c8d7e";      // default, chains
const std::string kReader = "reader-token-0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c";  // default, read
const std::string kOther = "other-token-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";    // tenant-b

httplib::Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }
httplib::Headers Action(const std::string& token) {
  return {{"Authorization", "Bearer " + token}, {"X-Conveyor-Dashboard", "1"}};
}

class DashboardHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteFile(
        tokens_,
        absl::StrCat(TokensFileLine(kUser, "user default chains.submit,chains.read,chains.cancel"),
                     TokensFileLine(kReader, "reader default chains.read"),
                     TokensFileLine(kOther, "other tenant-b chains.read")));
    orchestrator_ = std::make_unique<testing::OrchestratorProcess>(
        redis_.url(), std::map<std::string, std::string>{},
        std::vector<std::string>{"--tokens-file", tokens_, "--http-listen", "127.0.0.1:0",
                                 "--http-port-file", port_file_},
        log_);
    ASSERT_TRUE(orchestrator_->ready().ok()) << orchestrator_->ready();
    // The port file is written before the gRPC server starts serving.
    ASSERT_TRUE(
        absl::SimpleAtoi(absl::StripAsciiWhitespace(testing::ReadFile(port_file_)), &http_port_))
        << testing::ReadFile(log_);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", http_port_);
    client_->set_read_timeout(10, 0);
  }
  void TearDown() override { testing::DumpLogs({log_}, HasFailure()); }

  // A chain that waits (its download stage points where nothing listens).
  std::string SubmitWaitingChain(const std::string& token) {
    v1::SubmitChainRequest request;
    request.mutable_spec()->add_steps()->mutable_download()->set_url("http://127.0.0.1:9/a.jpg");
    (*request.mutable_spec()->mutable_labels())["team"] = "<b>vision</b>";
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::Chain chain;
    grpc::Status status = orchestrator_->stub().SubmitChain(&context, request, &chain);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return chain.name().substr(std::string("chains/").size());
  }
  grpc::Status CancelOverGrpc(const std::string& id) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + kUser);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::CancelChainRequest request;
    request.set_name("chains/" + id);
    v1::Chain chain;
    return orchestrator_->stub().CancelChain(&context, request, &chain);
  }

  testing::TempDir dir_;
  const std::string tokens_ = dir_.path() + "/tokens";
  const std::string port_file_ = dir_.path() + "/http-port";
  const std::string log_ = dir_.path() + "/orchestrator.log";
  testing::RedisServer redis_;
  std::unique_ptr<testing::OrchestratorProcess> orchestrator_;
  int http_port_ = 0;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(DashboardHttpTest, ServesThePagesWithAContentSecurityPolicy) {
  for (const std::string path : {"/", "/app.js", "/app.css"}) {
    httplib::Result page = client_->Get(path.c_str());
    ASSERT_TRUE(page) << path << ": " << httplib::to_string(page.error());
    EXPECT_EQ(page->status, 200) << path;
    EXPECT_THAT(page->get_header_value("Content-Security-Policy"), HasSubstr("script-src 'self'"));
    EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(page->get_header_value("X-Frame-Options"), "DENY");
  }
  httplib::Result index = client_->Get("/");
  EXPECT_THAT(index->body, HasSubstr("<script src=\"/app.js\""));
  EXPECT_THAT(index->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_EQ(client_->Get("/no-such-page")->status, 404);
}

TEST_F(DashboardHttpTest, TokensAndScopesDecideAsOverGrpc) {
  const std::string id = SubmitWaitingChain(kUser);
  httplib::Result none = client_->Get("/api/chains");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_THAT(none->body, HasSubstr("UNAUTHENTICATED"));
  EXPECT_EQ(client_->Get("/api/chains", Bearer("not-a-token"))->status, 401);

  httplib::Result mine =
      client_->Get("/api/chains?label=team%3D%3Cb%3Evision%3C%2Fb%3E", Bearer(kReader));
  EXPECT_EQ(mine->status, 200) << mine->body;
  EXPECT_THAT(mine->body, HasSubstr(id));
  EXPECT_THAT(mine->body, Not(HasSubstr("<b>")));  // JSON escapes < and >
  httplib::Result theirs = client_->Get("/api/chains", Bearer(kOther));
  EXPECT_EQ(theirs->status, 200);
  EXPECT_THAT(theirs->body, Not(HasSubstr(id)));
  EXPECT_EQ(client_->Get(("/api/chains/" + id).c_str(), Bearer(kOther))->status, 404);
  EXPECT_EQ(client_->Get("/api/chains?state=DONE", Bearer(kReader))->status, 400);

  const std::string cancel = "/api/chains/" + id + "/cancel";
  EXPECT_EQ(client_->Post(cancel.c_str(), Action(kReader), "{}", "application/json")->status,
            403);  // chains.read only
  EXPECT_EQ(client_->Post(cancel.c_str(), Bearer(kUser), "{}", "application/json")->status,
            403);  // no CSRF header
  httplib::Headers cross_site = Action(kUser);
  cross_site.emplace("Origin", "https://evil.example");
  EXPECT_EQ(client_->Post(cancel.c_str(), cross_site, "{}", "application/json")->status, 403);
  httplib::Result cancelled =
      client_->Post(cancel.c_str(), Action(kUser), "{}", "application/json");
  EXPECT_EQ(cancelled->status, 200) << cancelled->body;
  EXPECT_THAT(cancelled->body, HasSubstr("\"state\":\"CANCELLED\""));
  httplib::Result retried = client_->Post(("/api/chains/" + id + "/retry").c_str(), Action(kUser),
                                          "{}", "application/json");
  EXPECT_EQ(retried->status, 200) << retried->body;
}

TEST_F(DashboardHttpTest, LoginCookieStandsInForTheHeader) {
  httplib::Headers csrf = {{"X-Conveyor-Dashboard", "1"}};
  httplib::Result bad =
      client_->Post("/api/login", csrf, "{\"token\":\"wrong\"}", "application/json");
  EXPECT_EQ(bad->status, 401);
  EXPECT_FALSE(bad->has_header("Set-Cookie"));
  httplib::Result login = client_->Post(
      "/api/login", csrf, absl::StrCat("{\"token\":\"", kReader, "\"}"), "application/json");
  ASSERT_EQ(login->status, 200) << login->body;
  const std::string cookie = login->get_header_value("Set-Cookie");
  EXPECT_THAT(cookie, HasSubstr("HttpOnly"));
  EXPECT_THAT(cookie, HasSubstr("SameSite=Strict"));
  EXPECT_THAT(cookie, Not(HasSubstr("Secure")));  // plain HTTP here
  const std::string pair = cookie.substr(0, cookie.find(';'));
  httplib::Result me = client_->Get("/api/whoami", {{"Cookie", pair}});
  EXPECT_EQ(me->status, 200);
  EXPECT_THAT(me->body, HasSubstr("\"principal\":\"reader\""));
}

TEST_F(DashboardHttpTest, ChainEventsArriveLiveOverSse) {
  const std::string id = SubmitWaitingChain(kUser);
  EXPECT_EQ(client_->Get(("/api/chains/" + id + "/events").c_str())->status, 401);
  EXPECT_EQ(client_->Get(("/api/chains/" + id + "/events").c_str(), Bearer(kOther))->status, 404);

  absl::Mutex mu;
  std::string received;
  bool saw_end = false;
  std::string content_type;
  std::thread reader([&] {
    httplib::Client sse("127.0.0.1", http_port_);
    sse.set_read_timeout(20, 0);
    httplib::Result r = sse.Get(("/api/chains/" + id + "/events").c_str(), Bearer(kReader),
                                [&](const httplib::Response& response) {
                                  absl::MutexLock lock(&mu);
                                  content_type = response.get_header_value("Content-Type");
                                  return true;
                                },
                                [&](const char* data, size_t n) {
                                  absl::MutexLock lock(&mu);
                                  received.append(data, n);
                                  saw_end = absl::StrContains(received, "event: end\n");
                                  return !saw_end;
                                });
    (void)r;
  });
  {
    // The history first: the chain waits for its stage.
    absl::MutexLock lock(&mu);
    auto submitted = [&] { return absl::StrContains(received, "CHAIN_SUBMITTED"); };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&submitted), absl::Seconds(15))) << received;
  }
  // Then a live event, written after the stream opened.
  ASSERT_TRUE(CancelOverGrpc(id).ok());
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&saw_end), absl::Seconds(15))) << received;
    EXPECT_THAT(received, HasSubstr("CHAIN_CANCELLED"));
    EXPECT_THAT(received, HasSubstr("\"state\":\"CANCELLED\""));
    EXPECT_EQ(content_type, "text/event-stream");
  }
  reader.join();
}

TEST_F(DashboardHttpTest, OverviewStreamSendsTheListAndStatus) {
  const std::string id = SubmitWaitingChain(kUser);
  std::string received;
  httplib::Client sse("127.0.0.1", http_port_);
  sse.set_read_timeout(20, 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  sse.Get("/api/stream?label=team%3D%3Cb%3Evision%3C%2Fb%3E", Bearer(kReader),
          [&](const char* data, size_t n) {
            received.append(data, n);
            const bool done = absl::StrContains(received, "event: status") &&
                              absl::StrContains(received, "event: chains");
            return !done && absl::Now() < deadline;
          });
  EXPECT_THAT(received, HasSubstr(id));
  EXPECT_THAT(received, HasSubstr("\"health\":\"UNREACHABLE\""));
  // A reader is not an admin: no queue counters.
  EXPECT_THAT(received, Not(HasSubstr("\"queued\":1")));
}

}  // namespace
}  // namespace conveyor
