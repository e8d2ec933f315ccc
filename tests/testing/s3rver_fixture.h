// A real S3-compatible server for tests: the npm package s3rver (pinned in
// tools/s3rver/package-lock.json, installed by tools/setup.sh), run by node on
// a free 127.0.0.1 port with its data in a temporary directory.
//
// What s3rver 3.7.1 checks, and so what tests against it can prove: it
// rejects an unknown access key id (403 InvalidAccessKeyId; the only key is
// S3RVER) and a missing bucket (404 NoSuchBucket); it requires an
// x-amz-content-sha256 header on SigV4 requests, but it does not verify SigV4
// signatures, so a wrong secret key is accepted.
#ifndef CONVEYOR_TESTS_TESTING_S3RVER_FIXTURE_H_
#define CONVEYOR_TESTS_TESTING_S3RVER_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::testing {

// An unsigned HTTP GET's answer.
struct HttpGetResult {
  long status = 0;
  std::string body;
  std::string etag;          // ETag header, quotes included, "" if none
  std::string content_type;  // Content-Type header, "" if none
};

// GET `url` with libcurl (loopback only: callers pass the fixture's URLs).
absl::StatusOr<HttpGetResult> HttpGet(const std::string& url);

class S3rver {
 public:
  // The credentials s3rver accepts.
  static constexpr absl::string_view kAccessKeyId = "S3RVER";
  static constexpr absl::string_view kSecretAccessKey = "S3RVER";

  // Starts s3rver with `buckets` created, and waits until it answers HTTP.
  // FAILED_PRECONDITION if node or s3rver is not installed (run
  // tools/setup.sh); DEADLINE_EXCEEDED if it does not answer in time.
  static absl::StatusOr<std::unique_ptr<S3rver>> Start(const std::vector<std::string>& buckets);

  ~S3rver();
  S3rver(const S3rver&) = delete;
  S3rver& operator=(const S3rver&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:<port>", what conveyor-upload's --s3-endpoint wants.
  std::string endpoint() const;
  // Path-style URL of an object, for reading it back with HttpGet.
  std::string ObjectUrl(absl::string_view bucket, absl::string_view key) const;
  // The server's log (stdout and stderr), for failure messages.
  std::string Log() const;

 private:
  S3rver() = default;

  std::unique_ptr<TempDir> dir_;
  int port_ = 0;
  std::unique_ptr<ScopedProcess> process_;
};

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_S3RVER_FIXTURE_H_
