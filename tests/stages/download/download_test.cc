// Downloader without gRPC, against a real HTTP server on 127.0.0.1.
#include "stages/download/download.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "common/status_details.h"
#include "tests/testing/http_test_server.h"

namespace conveyor::stages::download {
namespace {

using ::conveyor::testing::HttpTestServer;

std::string Encode(const std::string& ext, int width, int height) {
  cv::Mat image(height, width, CV_8UC3, cv::Scalar(30, 90, 200));
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes));
  return std::string(bytes.begin(), bytes.end());
}

struct StatusCase {
  int http_status;
  absl::StatusCode expected;
};

class HttpStatusMappingTest : public ::testing::TestWithParam<StatusCase> {};

TEST_P(HttpStatusMappingTest, MapsToRetryAwareCode) {
  absl::Status status = DownloadStatusFromHttp(GetParam().http_status, "http://h/x");
  EXPECT_EQ(status.code(), GetParam().expected) << GetParam().http_status << ": " << status;
  if (!status.ok()) {
    EXPECT_EQ(ErrorReason(status), "HTTP_STATUS");
    EXPECT_NE(status.message().find(std::to_string(GetParam().http_status)),
              absl::string_view::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(All, HttpStatusMappingTest,
                         ::testing::Values(StatusCase{200, absl::StatusCode::kOk},
                                           StatusCase{203, absl::StatusCode::kOk},
                                           StatusCase{404, absl::StatusCode::kNotFound},
                                           StatusCase{410, absl::StatusCode::kNotFound},
                                           StatusCase{401, absl::StatusCode::kPermissionDenied},
                                           StatusCase{403, absl::StatusCode::kPermissionDenied},
                                           StatusCase{408, absl::StatusCode::kUnavailable},
                                           StatusCase{429, absl::StatusCode::kUnavailable},
                                           StatusCase{500, absl::StatusCode::kUnavailable},
                                           StatusCase{502, absl::StatusCode::kUnavailable},
                                           StatusCase{503, absl::StatusCode::kUnavailable},
                                           StatusCase{599, absl::StatusCode::kUnavailable},
                                           StatusCase{400, absl::StatusCode::kFailedPrecondition},
                                           StatusCase{405, absl::StatusCode::kFailedPrecondition},
                                           StatusCase{451, absl::StatusCode::kFailedPrecondition},
                                           StatusCase{304, absl::StatusCode::kFailedPrecondition}));

class DownloaderTest : public ::testing::Test {
 protected:
  DownloaderTest() : client_(Options()), downloader_(client_, SmallLimit()) {
    server_.http().Get("/a.png", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(png_, "application/octet-stream");  // the header is not trusted
    });
    server_.http().Get("/lie.jpg", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<html>not an image</html>", "image/jpeg");
    });
    server_.Start();
  }

  static DownloadOptions SmallLimit() {
    DownloadOptions options;
    options.max_bytes = 100000;
    return options;
  }

  static HttpClientOptions Options() {
    HttpClientOptions options;
    options.ssrf_policy.allowed_networks.push_back(*ParseIpNetwork("127.0.0.1/32"));
    return options;
  }

  absl::Status Download(const std::string& url, v1::DownloadResponse& response,
                        int64_t max_bytes = 0) {
    v1::DownloadRequest request;
    request.mutable_spec()->set_url(url);
    request.mutable_spec()->set_max_bytes(max_bytes);
    DownloadStats stats;
    return downloader_.Download(request, response, nullptr, absl::InfiniteFuture(), stats);
  }

  const std::string png_ = Encode(".png", 31, 17);
  HttpTestServer server_;
  HttpClient client_;
  Downloader downloader_;
};

TEST_F(DownloaderTest, FillsImageFromHeaderNotContentType) {
  v1::DownloadResponse response;
  ASSERT_TRUE(Download(server_.Url("/a.png"), response).ok());
  EXPECT_EQ(response.image().media_type(), "image/png");
  EXPECT_EQ(response.image().width(), 31);
  EXPECT_EQ(response.image().height(), 17);
  EXPECT_EQ(response.image().data(), png_);
  EXPECT_EQ(response.http_status(), 200);
  EXPECT_EQ(response.final_url(), server_.Url("/a.png"));
}

TEST_F(DownloaderTest, NonImageIsNotAnImageWhateverTheContentType) {
  v1::DownloadResponse response;
  absl::Status status = Download(server_.Url("/lie.jpg"), response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(ErrorReason(status), "NOT_AN_IMAGE");
}

TEST_F(DownloaderTest, SpecMaxBytesLowersTheLimit) {
  v1::DownloadResponse response;
  absl::Status status = Download(server_.Url("/a.png"), response, 20);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(ErrorReason(status), "TOO_LARGE");
}

TEST_F(DownloaderTest, NegativeMaxBytesNamesTheField) {
  v1::DownloadResponse response;
  absl::Status status = Download(server_.Url("/a.png"), response, -1);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("spec.max_bytes"), absl::string_view::npos) << status;
}

TEST_F(DownloaderTest, BadUrlNamesTheField) {
  v1::DownloadResponse response;
  for (const char* url : {"", "ftp://127.0.0.1/a.png", "/a.png"}) {
    absl::Status status = Download(url, response);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_NE(status.message().find("spec.url"), absl::string_view::npos) << status;
  }
}

}  // namespace
}  // namespace conveyor::stages::download
