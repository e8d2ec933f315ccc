// S3Store against a scripted HTTP server on loopback, for what s3rver cannot
// show: s3rver does not verify SigV4 signatures, so the first test recomputes
// the signature of the request the server received, independently of
// libcurl; the others make the server fail, stall or wait for cancellation.
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/status_details.h"
#include "stages/upload/s3_store.h"
#include "common/sha256.h"

namespace conveyor::stages::upload {
namespace {

struct Recorded {
  std::string method;
  std::string target;                          // as sent, still percent-encoded
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &length);
  return std::string(reinterpret_cast<const char*>(out), length);
}

// "k1=v1, k2=v2" after the algorithm name -> map.
std::map<std::string, std::string> AuthorizationFields(absl::string_view header) {
  std::map<std::string, std::string> fields;
  absl::string_view rest = header.substr(header.find(' ') + 1);
  for (absl::string_view part : absl::StrSplit(rest, ',')) {
    part = absl::StripAsciiWhitespace(part);
    const size_t eq = part.find('=');
    if (eq != absl::string_view::npos) {
      fields[std::string(part.substr(0, eq))] = std::string(part.substr(eq + 1));
    }
  }
  return fields;
}

class S3StoreHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Put(".*", [this](const httplib::Request& request, httplib::Response& response) {
      {
        absl::MutexLock lock(&mu_);
        recorded_.method = request.method;
        recorded_.target = request.target;
        for (const auto& [name, value] : request.headers) {
          recorded_.headers[absl::AsciiStrToLower(name)] = value;
        }
        recorded_.body = request.body;
        received_ = true;
      }
      if (stall_) {
        // Hold the answer until the test ends (bounded, in case it hangs).
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(&release_), absl::Seconds(20));
        return;
      }
      response.status = status_;
      if (status_ == 200) {
        response.set_header("ETag", "\"0123abcd\"");
      } else {
        response.set_content(error_body_, "application/xml");
      }
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  void TearDown() override {
    {
      absl::MutexLock lock(&mu_);
      release_ = true;
    }
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  S3Store MakeStore(absl::Duration timeout = absl::Seconds(60)) const {
    S3Options options;
    options.endpoint = absl::StrCat("http://127.0.0.1:", port_);
    options.access_key_id = "AKIDEXAMPLE";
    options.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    options.timeout = timeout;
    return S3Store(options);
  }

  // Set before the first request; read by the server thread.
  int status_ = 200;
  std::string error_body_;
  bool stall_ = false;

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  absl::Mutex mu_;
  Recorded recorded_ ABSL_GUARDED_BY(mu_);
  bool received_ ABSL_GUARDED_BY(mu_) = false;
  bool release_ ABSL_GUARDED_BY(mu_) = false;
};

TEST_F(S3StoreHttpTest, RequestCarriesAValidSigV4OverThePayloadHash) {
  S3Options options;
  options.endpoint = absl::StrCat("http://127.0.0.1:", port_);
  options.region = "eu-west-3";
  options.access_key_id = "AKIDEXAMPLE";
  options.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  S3Store store(options);
  const std::string body = "\x89PNG\r\n\x1a\n pretend pixels";
  const std::string digest = Sha256Hex(body);
  absl::StatusOr<conveyor::v1::StoredObject> put =
      store.Put("bkt", "dir/a b.png", body, "image/png", digest, nullptr, absl::InfiniteFuture());
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->etag(), "\"0123abcd\"");
  EXPECT_EQ(put->uri(), "s3://bkt/dir/a b.png");

  absl::MutexLock lock(&mu_);
  const Recorded& r = recorded_;
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.target, "/bkt/dir/a%20b.png");
  EXPECT_EQ(r.body, body);
  EXPECT_EQ(r.headers.at("content-type"), "image/png");
  ASSERT_EQ(r.headers.count("x-amz-content-sha256"), 1u);
  EXPECT_EQ(r.headers.at("x-amz-content-sha256"), Sha256Hex(r.body));

  ASSERT_EQ(r.headers.count("authorization"), 1u);
  const std::string& authorization = r.headers.at("authorization");
  ASSERT_TRUE(absl::StartsWith(authorization, "AWS4-HMAC-SHA256 ")) << authorization;
  std::map<std::string, std::string> fields = AuthorizationFields(authorization);
  const std::string amz_date = r.headers.at("x-amz-date");
  const std::string date = amz_date.substr(0, 8);
  const std::string scope = absl::StrCat(date, "/eu-west-3/s3/aws4_request");
  EXPECT_EQ(fields["Credential"], absl::StrCat("AKIDEXAMPLE/", scope));

  // Every signed header was really sent, and the ones S3 needs are signed.
  const std::vector<std::string> signed_headers = absl::StrSplit(fields["SignedHeaders"], ';');
  for (const std::string& name : signed_headers) {
    EXPECT_EQ(r.headers.count(name), 1u) << "signed but not sent: " << name;
  }
  for (const char* needed : {"host", "x-amz-date", "x-amz-content-sha256", "content-type"}) {
    EXPECT_NE(std::find(signed_headers.begin(), signed_headers.end(), needed), signed_headers.end())
        << needed << " not signed: " << fields["SignedHeaders"];
  }

  std::string canonical_headers;
  for (const std::string& name : signed_headers) {
    absl::StrAppend(&canonical_headers, name, ":",
                    absl::StripAsciiWhitespace(r.headers.count(name) ? r.headers.at(name) : ""),
                    "\n");
  }
  const std::string canonical_request =
      absl::StrCat(r.method, "\n", r.target, "\n", "", "\n", canonical_headers, "\n",
                   fields["SignedHeaders"], "\n", Sha256Hex(r.body));
  const std::string string_to_sign =
      absl::StrCat("AWS4-HMAC-SHA256\n", amz_date, "\n", scope, "\n", Sha256Hex(canonical_request));
  std::string key = HmacSha256(absl::StrCat("AWS4", options.secret_access_key), date);
  key = HmacSha256(key, "eu-west-3");
  key = HmacSha256(key, "s3");
  key = HmacSha256(key, "aws4_request");
  EXPECT_EQ(fields["Signature"], absl::BytesToHexString(HmacSha256(key, string_to_sign)));

  // A wrong secret gives another signature: the comparison above can fail.
  std::string wrong = HmacSha256("AWS4wrong", date);
  wrong = HmacSha256(HmacSha256(HmacSha256(wrong, "eu-west-3"), "s3"), "aws4_request");
  EXPECT_NE(fields["Signature"], absl::BytesToHexString(HmacSha256(wrong, string_to_sign)));
}

TEST_F(S3StoreHttpTest, ServerErrorIsUnavailableWithTheS3Code) {
  status_ = 503;
  error_body_ = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code></Error>";
  absl::Status status =
      MakeStore()
          .Put("bkt", "k.png", "x", "image/png", Sha256Hex("x"), nullptr, absl::InfiniteFuture())
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(ErrorReason(status), "S3_SLOW_DOWN");
}

TEST_F(S3StoreHttpTest, OtherClientErrorFailsPrecondition) {
  status_ = 400;
  error_body_ = "<Error><Code>InvalidBucketState</Code></Error>";
  EXPECT_EQ(
      MakeStore()
          .Put("bkt", "k.png", "x", "image/png", Sha256Hex("x"), nullptr, absl::InfiniteFuture())
          .status()
          .code(),
      absl::StatusCode::kFailedPrecondition);
}

TEST_F(S3StoreHttpTest, StalledServerHitsTheCallDeadline) {
  stall_ = true;
  const absl::Time start = absl::Now();
  absl::Status status = MakeStore()
                            .Put("bkt", "k.png", "x", "image/png", Sha256Hex("x"), nullptr,
                                 absl::Now() + absl::Milliseconds(300))
                            .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(S3StoreHttpTest, StalledServerHitsTheTimeoutFlag) {
  stall_ = true;
  absl::Status status =
      MakeStore(absl::Milliseconds(300))
          .Put("bkt", "k.png", "x", "image/png", Sha256Hex("x"), nullptr, absl::InfiniteFuture())
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
}

TEST_F(S3StoreHttpTest, CancellationStopsAStalledPut) {
  stall_ = true;
  // The call counts as cancelled once the server holds the request.
  std::function<bool()> cancelled = [this] {
    absl::MutexLock lock(&mu_);
    return received_;
  };
  absl::Status status =
      MakeStore()
          .Put("bkt", "k.png", "x", "image/png", Sha256Hex("x"), cancelled, absl::InfiniteFuture())
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
}

}  // namespace
}  // namespace conveyor::stages::upload
