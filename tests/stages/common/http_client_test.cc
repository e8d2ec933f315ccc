// HttpClient against a real HTTP server on 127.0.0.1. Loopback is refused by
// default, so most tests allow exactly 127.0.0.1/32; the guard tests use other
// loopback spellings only (no packet leaves the machine).
#include "stages/common/http_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/process_fixture.h"

namespace conveyor {
namespace {

using ::conveyor::testing::HttpTestServer;

HttpClientOptions LoopbackOptions() {
  HttpClientOptions options;
  options.connect_timeout = absl::Seconds(2);
  options.total_timeout = absl::Seconds(10);
  options.ssrf_policy.allowed_networks.push_back(*ParseIpNetwork("127.0.0.1/32"));
  return options;
}

HttpRequest Get(const std::string& url) {
  HttpRequest request;
  request.url = url;
  request.url_field = "spec.url";
  request.follow_redirects = true;
  request.max_redirects = 3;
  return request;
}

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& http = server_.http();
    http.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("hello", "text/plain");
    });
    http.Get("/hop1", [this](const httplib::Request&, httplib::Response& res) {
      res.set_redirect(server_.Url("/hop2"));
    });
    http.Get("/hop2", [this](const httplib::Request&, httplib::Response& res) {
      res.set_redirect(server_.Url("/hello"));
    });
    http.Get("/loop", [this](const httplib::Request&, httplib::Response& res) {
      res.set_redirect(server_.Url("/loop"));
    });
    http.Get("/to-other-loopback", [this](const httplib::Request&, httplib::Response& res) {
      res.set_redirect(server_.Url("/hello", "127.0.0.2"));
    });
    http.Get("/to-file", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("file:///etc/passwd");
    });
    http.Get("/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(100000, 'x'), "application/octet-stream");
    });
    http.Get("/big-chunked", [](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("application/octet-stream",
                                       [](size_t offset, httplib::DataSink& sink) {
                                         if (offset >= 1 << 20) {
                                           sink.done();
                                           return true;
                                         }
                                         std::string chunk(16384, 'y');
                                         return sink.write(chunk.data(), chunk.size());
                                       });
    });
    http.Get("/missing", [](const httplib::Request&, httplib::Response& res) {
      res.status = 404;
      res.set_content(std::string(100000, 'e'), "text/html");
    });
    http.Get("/slow", [this](const httplib::Request&, httplib::Response& res) {
      server_.SleepUnlessStopping(absl::Seconds(20));
      res.set_content("late", "text/plain");
    });
    http.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(absl::StrCat(req.get_header_value("X-Test"), "|", req.body), "text/plain");
    });
    server_.Start();
  }

  HttpTestServer server_;
};

TEST(ValidateHttpUrlTest, AcceptsHttpAndHttps) {
  EXPECT_TRUE(ValidateHttpUrl("spec.url", "http://example.test/a.jpg").ok());
  EXPECT_TRUE(ValidateHttpUrl("spec.url", "HTTPS://example.test:8443/a?b=c").ok());
  EXPECT_TRUE(ValidateHttpUrl("spec.url", "http://[::1]:80/").ok());
}

TEST(ValidateHttpUrlTest, RejectsOtherSchemesAndGarbageNamingTheField) {
  for (const char* url :
       {"", "ftp://example.test/a.jpg", "file:///etc/passwd", "gopher://x/", "example.test/a.jpg",
        "http://", "not a url", "dict://127.0.0.1:11211/"}) {
    absl::Status status = ValidateHttpUrl("spec.url", url);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_TRUE(absl::StartsWith(status.message(), "spec.url: ")) << status;
  }
  EXPECT_EQ(ValidateHttpUrl("spec.url", std::string(9000, 'a')).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ValidateHttpHeaderTest, RefusesControlCharactersInNamesAndValues) {
  EXPECT_TRUE(ValidateHttpHeader("webhook-id", "msg_7f3a_1").ok());
  EXPECT_TRUE(ValidateHttpHeader("X-Tab", "a\tb").ok());
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"webhook-id", "x\r\nX-Injected: yes"},
           {"webhook-id", "x\nHost: evil.test"},
           {"webhook-id", "x\r"},
           {"webhook-id", std::string("x\0y", 3)},
           {"webhook-id", "x\x7f"},
           {"X-Bad\r\nName", "v"},
           {"X Space", "v"},
           {"X:Colon", "v"},
           {"", "v"}}) {
    absl::Status status = ValidateHttpHeader(name, value);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(status.message().find('\n'), absl::string_view::npos) << status;
  }
}

TEST_F(HttpClientTest, HeaderWithCrLfIsRefusedBeforeConnecting) {
  HttpClient client(LoopbackOptions());
  HttpRequest request = Get(server_.Url("/hello"));
  request.headers.emplace_back("webhook-id", "x\r\nX-Injected: yes");
  auto response = client.Fetch(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << response.status();
}

TEST_F(HttpClientTest, FetchesBodyAndStatus) {
  HttpClient client(LoopbackOptions());
  auto response = client.Fetch(Get(server_.Url("/hello")));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello");
  EXPECT_EQ(response->redirects, 0);
}

TEST_F(HttpClientTest, FollowsRedirectsAndReportsFinalUrl) {
  HttpClient client(LoopbackOptions());
  auto response = client.Fetch(Get(server_.Url("/hop1")));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "hello");
  EXPECT_EQ(response->redirects, 2);
  EXPECT_EQ(response->final_url, server_.Url("/hello"));
}

TEST_F(HttpClientTest, RedirectLoopIsTooManyRedirects) {
  HttpClient client(LoopbackOptions());
  auto response = client.Fetch(Get(server_.Url("/loop")));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(response.status()), "TOO_MANY_REDIRECTS");
}

TEST_F(HttpClientTest, WithoutFollowingA3xxIsReturnedAsIs) {
  HttpClient client(LoopbackOptions());
  HttpRequest request = Get(server_.Url("/hop1"));
  request.follow_redirects = false;
  auto response = client.Fetch(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 302);
}

TEST_F(HttpClientTest, ZeroRedirectsAllowedMakesAnyRedirectTooMany) {
  HttpClient client(LoopbackOptions());
  HttpRequest request = Get(server_.Url("/hop1"));
  request.max_redirects = 0;
  auto response = client.Fetch(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << response.status();
  EXPECT_EQ(ErrorReason(response.status()), "TOO_MANY_REDIRECTS");
}

TEST_F(HttpClientTest, GuardIsCheckedOnEveryHop) {
  HttpClient client(LoopbackOptions());  // allows 127.0.0.1 only
  auto response = client.Fetch(Get(server_.Url("/to-other-loopback")));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kPermissionDenied) << response.status();
  EXPECT_EQ(ErrorReason(response.status()), "DESTINATION_BLOCKED");
  // Names the host of the hop that was refused, not the first one.
  EXPECT_TRUE(absl::StartsWith(response.status().message(),
                               "destination 127.0.0.2 resolves to a loopback address"))
      << response.status();
}

TEST_F(HttpClientTest, AllowedAddressIsUsedWhenAnotherOfTheHostIsRefused) {
  // localhost is ::1 and 127.0.0.1; only the latter is allowed (and served).
  HttpClient client(LoopbackOptions());
  auto response = client.Fetch(Get(server_.Url("/hello", "localhost")));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "hello");
}

TEST_F(HttpClientTest, DefaultGuardRefusesLoopbackInEverySpelling) {
  HttpClient client(HttpClientOptions{});
  for (const char* host : {"127.0.0.1", "127.1", "2130706433", "0x7f000001", "[::1]", "localhost",
                           "[::ffff:127.0.0.1]"}) {
    auto response = client.Fetch(Get(server_.Url("/hello", host)));
    EXPECT_EQ(response.status().code(), absl::StatusCode::kPermissionDenied)
        << host << ": " << response.status();
    EXPECT_EQ(ErrorReason(response.status()), "DESTINATION_BLOCKED") << host;
  }
}

TEST_F(HttpClientTest, RedirectToAnotherSchemeIsInvalidArgument) {
  HttpClient client(LoopbackOptions());
  auto response = client.Fetch(Get(server_.Url("/to-file")));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << response.status();
}

TEST_F(HttpClientTest, BodyOverLimitIsTooLarge) {
  HttpClient client(LoopbackOptions());
  for (const char* path : {"/big", "/big-chunked"}) {
    HttpRequest request = Get(server_.Url(path));
    request.max_response_bytes = 50000;
    auto response = client.Fetch(request);
    EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_EQ(ErrorReason(response.status()), "TOO_LARGE") << path;
  }
}

TEST_F(HttpClientTest, TruncatingKeepsTheStatus) {
  HttpClient client(LoopbackOptions());
  HttpRequest request = Get(server_.Url("/big-chunked"));
  request.max_response_bytes = 1000;
  request.truncate_response = true;
  auto response = client.Fetch(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body.size(), 1000u);
  EXPECT_TRUE(response->body_truncated);
}

TEST_F(HttpClientTest, ErrorStatusIsReturnedWithoutReadingTheBody) {
  HttpClient client(LoopbackOptions());
  HttpRequest request = Get(server_.Url("/missing"));
  request.max_response_bytes = 1000;  // smaller than the error page
  auto response = client.Fetch(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404);
  EXPECT_TRUE(response->body.empty());
}

TEST_F(HttpClientTest, SlowResponseHitsTotalTimeout) {
  HttpClientOptions options = LoopbackOptions();
  options.total_timeout = absl::Milliseconds(300);
  HttpClient client(options);
  const absl::Time start = absl::Now();
  auto response = client.Fetch(Get(server_.Url("/slow")));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded) << response.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(HttpClientTest, CallerDeadlineCapsTheTimeout) {
  HttpClient client(LoopbackOptions());  // total timeout 10 s
  HttpRequest request = Get(server_.Url("/slow"));
  request.deadline = absl::Now() + absl::Milliseconds(300);
  auto response = client.Fetch(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded) << response.status();

  request.deadline = absl::Now() - absl::Seconds(1);
  EXPECT_EQ(client.Fetch(request).status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(HttpClientTest, CancellationAbortsTheTransfer) {
  HttpClient client(LoopbackOptions());
  HttpRequest request = Get(server_.Url("/slow"));
  std::atomic<int> polls{0};
  // Cancelled from the third progress poll on: proves the transfer polls.
  request.cancelled = [&polls] { return ++polls > 2; };
  const absl::Time start = absl::Now();
  auto response = client.Fetch(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kCancelled) << response.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(HttpClientTest, ConnectionRefusedIsUnavailable) {
  HttpClient client(LoopbackOptions());
  // PickFreePort binds port 0 and closes it again: nothing listens there.
  const int closed_port = ::conveyor::testing::PickFreePort();
  auto response = client.Fetch(Get(absl::StrCat("http://127.0.0.1:", closed_port, "/")));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
}

TEST_F(HttpClientTest, PostsBodyAndHeaders) {
  HttpClient client(LoopbackOptions());
  HttpRequest request = Get(server_.Url("/echo"));
  request.method = "POST";
  request.body = R"({"a":1})";
  request.headers = {{"X-Test", "yes"}, {"Content-Type", "application/json"}};
  auto response = client.Fetch(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, R"(yes|{"a":1})");
}

class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(::conveyor::testing::WriteSelfSignedCertificate(dir_.path(), tls_).ok());
    server_ = std::make_unique<HttpTestServer>(tls_);
    server_->http().Get("/hello", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("secure hello", "text/plain");
    });
    server_->Start();
  }

  ::conveyor::testing::TempDir dir_;
  ::conveyor::testing::TlsFiles tls_;
  std::unique_ptr<HttpTestServer> server_;
};

TEST_F(HttpsTest, FetchesWhenTheCertificateVerifies) {
  HttpClientOptions options = LoopbackOptions();
  options.ca_file = tls_.cert_path;
  HttpClient client(options);
  auto response = client.Fetch(Get(server_->Url("/hello")));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "secure hello");
}

TEST_F(HttpsTest, UntrustedCertificateIsFailedPrecondition) {
  HttpClient client(LoopbackOptions());  // system CA store: does not know our certificate
  auto response = client.Fetch(Get(server_->Url("/hello")));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kFailedPrecondition) << response.status();
}

}  // namespace
}  // namespace conveyor
