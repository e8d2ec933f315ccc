// Starts the real conveyor-download binary on loopback and calls it over gRPC,
// against a real HTTP server on 127.0.0.1. Every URL is a loopback spelling:
// the guard is proved on loopback forms only, no packet leaves the machine.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "common/grpc_status.h"
#include "common/status_details.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/stage_worker.h"

namespace conveyor::stages::download {
namespace {

using ::conveyor::testing::HttpTestServer;
using ::conveyor::testing::LoopbackAddress;
using ::conveyor::testing::PickFreePort;
using ::conveyor::testing::ReadFile;
using ::conveyor::testing::ScopedProcess;
using ::conveyor::testing::StageWorker;
using ::conveyor::testing::TempDir;

std::string Encode(const std::string& ext, int width, int height) {
  cv::Mat image(height, width, CV_8UC3);
  cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes));
  return std::string(bytes.begin(), bytes.end());
}

class DownloadWorker {
 public:
  DownloadWorker(const std::string& log_path, std::vector<std::string> flags,
                 std::vector<std::string> env = {})
      : worker_("conveyor-download", std::move(flags), std::move(env), log_path) {
    EXPECT_TRUE(worker_.ready().ok()) << worker_.ready();
  }

  grpc::Status Call(const std::string& url, v1::DownloadResponse* response, int64_t max_bytes = 0) {
    v1::DownloadRequest request;
    request.mutable_context()->set_chain("chains/dl");
    request.mutable_context()->set_step_index(0);
    request.mutable_context()->set_attempt(1);
    request.mutable_spec()->set_url(url);
    request.mutable_spec()->set_max_bytes(max_bytes);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub().Download(&ctx, request, response);
  }

  v1::DownloadStage::Stub& stub() { return worker_.stub(); }

 private:
  StageWorker<v1::DownloadStage> worker_;
};

std::string Reason(const grpc::Status& status) { return ErrorReason(FromGrpcStatus(status)); }

class DownloadServiceTest : public ::testing::Test {
 protected:
  static constexpr int64_t kMaxBytes = 200000;

  static void SetUpTestSuite() {
    jpeg_ = new std::string(Encode(".jpg", 64, 48));
    png_ = new std::string(Encode(".png", 20, 30));
    webp_ = new std::string(Encode(".webp", 40, 10));
    cancel_entered_ = new absl::Notification();
    server_ = new HttpTestServer();
    httplib::Server& http = server_->http();
    http.Get("/img.jpg", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(*jpeg_, "image/jpeg");
    });
    http.Get("/img.png", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(*png_, "text/plain");  // a wrong Content-Type does not matter
    });
    http.Get("/img.webp", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(*webp_, "image/webp");
    });
    http.Get("/redirect", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect(server_->Url("/redirect2"));
    });
    http.Get("/redirect2", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect(server_->Url("/img.jpg"), 301);
    });
    http.Get("/loop", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect(server_->Url("/loop"));
    });
    // The first hop is allowed (127.0.0.1/32); the second is loopback too,
    // but 127.0.0.2 is not on the allow-list.
    http.Get("/to-127-0-0-2", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect(server_->Url("/img.jpg", "127.0.0.2"));
    });
    http.Get("/to-ftp", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("ftp://127.0.0.1/img.jpg");
    });
    http.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      server_->SleepUnlessStopping(absl::Seconds(30));
      res.set_content(*jpeg_, "image/jpeg");
    });
    http.Get("/slow-cancel", [](const httplib::Request&, httplib::Response& res) {
      cancel_entered_->Notify();
      server_->SleepUnlessStopping(absl::Seconds(30));
      res.set_content(*jpeg_, "image/jpeg");
    });
    // A valid JPEG start followed by endless bytes, without Content-Length:
    // only the streaming limit can stop it.
    http.Get("/huge", [](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("image/jpeg", [](size_t offset, httplib::DataSink& sink) {
        if (offset > (size_t{64} << 20)) {
          sink.done();
          return true;
        }
        std::string chunk = offset == 0 ? *jpeg_ : std::string(65536, '\x42');
        return sink.write(chunk.data(), chunk.size());
      });
    });
    http.Get("/huge-declared", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(*jpeg_ + std::string(kMaxBytes, '\0'), "image/jpeg");
    });
    http.Get("/text", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<html><body>definitely not a picture</body></html>", "image/jpeg");
    });
    for (int code : {400, 401, 403, 404, 408, 410, 429, 500, 503}) {
      http.Get(absl::StrCat("/status/", code),
               [code](const httplib::Request&, httplib::Response& res) {
                 res.status = code;
                 res.set_content(absl::StrCat("status ", code), "text/plain");
               });
    }
    server_->Start();

    log_dir_ = new TempDir();
    ::conveyor::testing::TlsFiles tls;
    ASSERT_TRUE(::conveyor::testing::WriteSelfSignedCertificate(log_dir_->path(), tls).ok());
    tls_server_ = new HttpTestServer(tls);
    tls_server_->http().Get("/img.png", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(*png_, "image/png");
    });
    tls_server_->Start();
    // 127.0.0.1 only: enough to serve the tests, and the redirect to
    // 127.0.0.2 proves the guard runs again on the second hop.
    permissive_ = new DownloadWorker(
        LogPath("permissive"),
        {"--allow-cidr", "127.0.0.1/32", "--ca-file", tls.cert_path, "--total-timeout", "2s",
         "--max-bytes", absl::StrCat(kMaxBytes), "--max-redirects", "3"});
    // Default guard: loopback in any spelling is refused.
    strict_ = new DownloadWorker(LogPath("strict"), {});
  }

  static void TearDownTestSuite() {
    delete strict_;
    delete permissive_;
    delete server_;
    delete tls_server_;
    delete log_dir_;
    delete cancel_entered_;
    delete jpeg_;
    delete png_;
    delete webp_;
  }

  static std::string LogPath(const std::string& name) {
    return absl::StrCat(log_dir_->path(), "/", name, ".log");
  }

  static std::string* jpeg_;
  static std::string* png_;
  static std::string* webp_;
  static absl::Notification* cancel_entered_;
  static HttpTestServer* server_;
  static HttpTestServer* tls_server_;
  static TempDir* log_dir_;
  static DownloadWorker* permissive_;
  static DownloadWorker* strict_;
};

std::string* DownloadServiceTest::jpeg_ = nullptr;
std::string* DownloadServiceTest::png_ = nullptr;
std::string* DownloadServiceTest::webp_ = nullptr;
absl::Notification* DownloadServiceTest::cancel_entered_ = nullptr;
HttpTestServer* DownloadServiceTest::server_ = nullptr;
HttpTestServer* DownloadServiceTest::tls_server_ = nullptr;
TempDir* DownloadServiceTest::log_dir_ = nullptr;
DownloadWorker* DownloadServiceTest::permissive_ = nullptr;
DownloadWorker* DownloadServiceTest::strict_ = nullptr;

TEST_F(DownloadServiceTest, DownloadsJpegWithDimensionsFromHeader) {
  v1::DownloadResponse response;
  grpc::Status status = permissive_->Call(server_->Url("/img.jpg"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.image().data(), *jpeg_);
  EXPECT_EQ(response.image().media_type(), "image/jpeg");
  EXPECT_EQ(response.image().width(), 64);
  EXPECT_EQ(response.image().height(), 48);
  EXPECT_EQ(response.http_status(), 200);
  EXPECT_EQ(response.redirects(), 0);
  EXPECT_EQ(response.final_url(), server_->Url("/img.jpg"));
}

TEST_F(DownloadServiceTest, DownloadsPngAndWebpByMagicNumber) {
  v1::DownloadResponse png;
  ASSERT_TRUE(permissive_->Call(server_->Url("/img.png"), &png).ok());
  EXPECT_EQ(png.image().media_type(), "image/png");
  EXPECT_EQ(png.image().width(), 20);
  EXPECT_EQ(png.image().height(), 30);
  v1::DownloadResponse webp;
  ASSERT_TRUE(permissive_->Call(server_->Url("/img.webp"), &webp).ok());
  EXPECT_EQ(webp.image().media_type(), "image/webp");
  EXPECT_EQ(webp.image().width(), 40);
  EXPECT_EQ(webp.image().height(), 10);
}

TEST_F(DownloadServiceTest, DownloadsOverHttps) {
  v1::DownloadResponse response;
  grpc::Status status = permissive_->Call(tls_server_->Url("/img.png"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.image().data(), *png_);
  EXPECT_TRUE(absl::StartsWith(response.final_url(), "https://")) << response.final_url();
}

TEST_F(DownloadServiceTest, FollowsRedirectChain) {
  v1::DownloadResponse response;
  grpc::Status status = permissive_->Call(server_->Url("/redirect"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.redirects(), 2);
  EXPECT_EQ(response.final_url(), server_->Url("/img.jpg"));
  EXPECT_EQ(response.image().data(), *jpeg_);
}

TEST_F(DownloadServiceTest, RedirectLoopIsInvalidArgument) {
  v1::DownloadResponse response;
  grpc::Status status = permissive_->Call(server_->Url("/loop"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(Reason(status), "TOO_MANY_REDIRECTS");
}

TEST_F(DownloadServiceTest, GuardRunsOnEveryRedirectHop) {
  v1::DownloadResponse response;
  grpc::Status status = permissive_->Call(server_->Url("/to-127-0-0-2"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_EQ(Reason(status), "DESTINATION_BLOCKED");
  EXPECT_TRUE(absl::StrContains(status.error_message(), "127.0.0.2")) << status.error_message();
}

TEST_F(DownloadServiceTest, RedirectToOtherSchemeIsInvalidArgument) {
  v1::DownloadResponse response;
  grpc::Status status = permissive_->Call(server_->Url("/to-ftp"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
}

TEST_F(DownloadServiceTest, DefaultGuardRefusesEveryLoopbackSpelling) {
  for (const char* host :
       {"127.0.0.1", "127.1", "2130706433", "0x7f000001", "[::1]", "localhost"}) {
    v1::DownloadResponse response;
    grpc::Status status = strict_->Call(server_->Url("/img.jpg", host), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << host << ": " << status.error_message();
    EXPECT_EQ(Reason(status), "DESTINATION_BLOCKED") << host;
    EXPECT_TRUE(absl::StrContains(status.error_message(), "loopback")) << status.error_message();
  }
}

TEST_F(DownloadServiceTest, SlowResponseIsDeadlineExceeded) {
  v1::DownloadResponse response;
  const absl::Time start = absl::Now();
  grpc::Status status = permissive_->Call(server_->Url("/slow"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));  // --total-timeout 2s, not the 30 s sleep
}

TEST_F(DownloadServiceTest, OversizedStreamIsInvalidArgument) {
  for (const char* path : {"/huge", "/huge-declared"}) {
    v1::DownloadResponse response;
    grpc::Status status = permissive_->Call(server_->Url(path), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << path << ": " << status.error_message();
    EXPECT_EQ(Reason(status), "TOO_LARGE") << path;
  }
}

TEST_F(DownloadServiceTest, SpecMaxBytesBelowBodyIsInvalidArgument) {
  v1::DownloadResponse response;
  grpc::Status status = permissive_->Call(server_->Url("/img.jpg"), &response, 100);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(Reason(status), "TOO_LARGE");
}

TEST_F(DownloadServiceTest, NegativeMaxBytesIsInvalidArgument) {
  v1::DownloadResponse response;
  grpc::Status status = permissive_->Call(server_->Url("/img.jpg"), &response, -5);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "spec.max_bytes"));
}

TEST_F(DownloadServiceTest, NonImageBytesAreInvalidArgument) {
  v1::DownloadResponse response;
  grpc::Status status = permissive_->Call(server_->Url("/text"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(Reason(status), "NOT_AN_IMAGE");
}

TEST_F(DownloadServiceTest, BadUrlIsInvalidArgumentNamingSpecUrl) {
  for (const char* url : {"", "ftp://127.0.0.1/img.jpg", "file:///etc/passwd", "not a url"}) {
    v1::DownloadResponse response;
    grpc::Status status = permissive_->Call(url, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << url;
    EXPECT_TRUE(absl::StartsWith(status.error_message(), "spec.url:")) << status.error_message();
  }
}

struct HttpCase {
  int http_status;
  grpc::StatusCode expected;
};

TEST_F(DownloadServiceTest, HttpStatusesMapToRetryAwareCodes) {
  for (const HttpCase& c :
       {HttpCase{404, grpc::StatusCode::NOT_FOUND}, HttpCase{410, grpc::StatusCode::NOT_FOUND},
        HttpCase{401, grpc::StatusCode::PERMISSION_DENIED},
        HttpCase{403, grpc::StatusCode::PERMISSION_DENIED},
        HttpCase{400, grpc::StatusCode::FAILED_PRECONDITION},
        HttpCase{408, grpc::StatusCode::UNAVAILABLE}, HttpCase{429, grpc::StatusCode::UNAVAILABLE},
        HttpCase{500, grpc::StatusCode::UNAVAILABLE},
        HttpCase{503, grpc::StatusCode::UNAVAILABLE}}) {
    v1::DownloadResponse response;
    grpc::Status status =
        permissive_->Call(server_->Url(absl::StrCat("/status/", c.http_status)), &response);
    EXPECT_EQ(status.error_code(), c.expected) << c.http_status << ": " << status.error_message();
    EXPECT_EQ(Reason(status), "HTTP_STATUS") << c.http_status;
  }
}

TEST_F(DownloadServiceTest, ConnectionRefusedIsUnavailable) {
  v1::DownloadResponse response;
  grpc::Status status =
      permissive_->Call(absl::StrCat("http://127.0.0.1:", PickFreePort(), "/img.jpg"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(DownloadServiceTest, ShortGrpcDeadlineWinsOverTotalTimeout) {
  v1::DownloadRequest request;
  request.mutable_spec()->set_url(server_->Url("/slow"));
  v1::DownloadResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  const absl::Time start = absl::Now();
  grpc::Status status = permissive_->stub().Download(&ctx, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(DownloadServiceTest, ProxyEnvironmentIsIgnored) {
  // Were the proxy used, the request would go to a closed loopback port.
  const std::string proxy = absl::StrCat("http://127.0.0.1:", PickFreePort());
  DownloadWorker worker(
      "", {"--allow-cidr", "127.0.0.1/32"},
      {"http_proxy=" + proxy, "HTTPS_PROXY=" + proxy, "ALL_PROXY=" + proxy, "all_proxy=" + proxy});
  v1::DownloadResponse response;
  grpc::Status status = worker.Call(server_->Url("/img.jpg"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.image().data(), *jpeg_);
}

TEST_F(DownloadServiceTest, ClientCancellationAbortsTheTransfer) {
  TempDir dir;
  const std::string log = absl::StrCat(dir.path(), "/worker.log");
  // A long total timeout: only the cancellation can end this download early.
  DownloadWorker worker(log, {"--allow-cidr", "127.0.0.1/32", "--total-timeout", "60s"});
  v1::DownloadRequest request;
  request.mutable_context()->set_chain("chains/cancel-me");
  request.mutable_spec()->set_url(server_->Url("/slow-cancel"));
  v1::DownloadResponse response;
  grpc::ClientContext ctx;
  grpc::Status status;
  std::thread call([&] { status = worker.stub().Download(&ctx, request, &response); });
  // Cancel once the worker's request has reached the HTTP server.
  const bool reached = cancel_entered_->WaitForNotificationWithTimeout(absl::Seconds(10));
  ctx.TryCancel();
  call.join();
  ASSERT_TRUE(reached);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  // The worker logs the call when its work ends: with code CANCELLED, long
  // before the 60 s timeout.
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  std::string text;
  while (absl::Now() < give_up && !absl::StrContains(text, "chains/cancel-me")) {
    absl::SleepFor(absl::Milliseconds(50));
    text = ReadFile(log);
  }
  EXPECT_TRUE(absl::StrContains(text, "code=CANCELLED")) << text;
}

TEST(DownloadStartupTest, RefusesBadFlagsWithExitCode2) {
  for (std::vector<std::string> flags :
       std::vector<std::vector<std::string>>{{"--allow-cidr", "10.0.0.1/8"},
                                             {"--allow-cidr", "localhost"},
                                             {"--max-bytes", "70000000"}}) {
    std::vector<std::string> argv = {CONVEYOR_BIN_DIR "/conveyor-download", "--listen",
                                     LoopbackAddress(PickFreePort())};
    argv.insert(argv.end(), flags.begin(), flags.end());
    ScopedProcess process(argv, "/dev/null");
    EXPECT_EQ(process.Wait(absl::Seconds(20)), 2) << flags[0] << " " << flags[1];
  }
}

}  // namespace
}  // namespace conveyor::stages::download
