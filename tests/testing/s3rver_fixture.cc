#include "tests/testing/s3rver_fixture.h"

#include <curl/curl.h>

#include <filesystem>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace conveyor::testing {
namespace {

struct Received {
  std::string body;
  std::string etag;
  std::string content_type;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  static_cast<Received*>(user)->body.append(data, size * count);
  return size * count;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* received = static_cast<Received*>(user);
  absl::string_view line(data, size * count);
  const auto value_of = [&](size_t name_length) {
    return std::string(absl::StripAsciiWhitespace(line.substr(name_length)));
  };
  if (absl::StartsWithIgnoreCase(line, "etag:")) received->etag = value_of(5);
  if (absl::StartsWithIgnoreCase(line, "content-type:")) received->content_type = value_of(13);
  return size * count;
}

}  // namespace

absl::StatusOr<HttpGetResult> HttpGet(const std::string& url) {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  Received received;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, 1000L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &received);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &received);
  const CURLcode code = curl_easy_perform(curl.get());
  if (code != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("GET ", url, ": ", curl_easy_strerror(code)));
  }
  HttpGetResult result;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &result.status);
  result.body = std::move(received.body);
  result.etag = std::move(received.etag);
  result.content_type = std::move(received.content_type);
  return result;
}

absl::StatusOr<std::unique_ptr<S3rver>> S3rver::Start(const std::vector<std::string>& buckets) {
  const std::string node = CONVEYOR_NODE_EXECUTABLE;
  const std::string script = CONVEYOR_S3RVER_SCRIPT;
  if (node.empty() || !std::filesystem::exists(node)) {
    return absl::FailedPreconditionError("node is not installed; run tools/setup.sh");
  }
  if (!std::filesystem::exists(script)) {
    return absl::FailedPreconditionError(
        absl::StrCat(script, " is missing; run tools/setup.sh (npm ci in tools/s3rver)"));
  }
  std::unique_ptr<S3rver> server(new S3rver());
  server->dir_ = std::make_unique<TempDir>();
  if (server->dir_->path().empty()) return absl::InternalError("cannot make a temp directory");
  server->port_ = PickFreePort();
  const std::string data_dir = server->dir_->path() + "/data";
  std::filesystem::create_directories(data_dir);
  std::vector<std::string> argv = {node,          script,
                                   "--directory", data_dir,
                                   "--address",   "127.0.0.1",
                                   "--port",      std::to_string(server->port_),
                                   "--silent",    "--no-vhost-buckets"};
  for (const std::string& bucket : buckets) {
    argv.push_back("--configure-bucket");
    argv.push_back(bucket);
  }
  server->process_ =
      std::make_unique<ScopedProcess>(std::move(argv), server->dir_->path() + "/s3rver.log");

  // s3rver creates the buckets before it listens, so any HTTP answer means
  // it is ready.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (!server->process_->running()) {
      return absl::FailedPreconditionError(
          absl::StrCat("s3rver exited during start-up: ", server->Log()));
    }
    absl::StatusOr<HttpGetResult> answer = HttpGet(server->endpoint() + "/");
    if (answer.ok() && answer->status != 0) return server;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("s3rver not answering on port ", server->port_, ": ", server->Log()));
}

S3rver::~S3rver() {
  // Stop the server before its directory goes.
  process_.reset();
  dir_.reset();
}

std::string S3rver::endpoint() const { return absl::StrCat("http://127.0.0.1:", port_); }

std::string S3rver::ObjectUrl(absl::string_view bucket, absl::string_view key) const {
  return absl::StrCat(endpoint(), "/", bucket, "/", key);
}

std::string S3rver::Log() const { return ReadFile(dir_->path() + "/s3rver.log"); }

}  // namespace conveyor::testing
