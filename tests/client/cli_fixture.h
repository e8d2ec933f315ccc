// The fixture of the CLI end-to-end tests (cli_test.cc, cli_manage_test.cc,
// one binary): the real `conveyor` binary against a real stack on loopback:
// redis-server, the five workers and the orchestrator from CONVEYOR_BIN_DIR,
// and an HTTP server (images, a 404, a slow URL, a flaky URL, a webhook
// receiver).
#ifndef CONVEYOR_TESTS_CLIENT_CLI_FIXTURE_H_
#define CONVEYOR_TESTS_CLIENT_CLI_FIXTURE_H_

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/error_details.pb.h"
#include "tests/client/no_token_env.h"
#include "tests/testing/command_runner.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/webhook_secrets_file.h"

namespace conveyor::client {

inline const std::string kBin = CONVEYOR_BIN_DIR;

inline std::string MakeJpeg(int width, int height, bool noise) {
  cv::Mat image(height, width, CV_8UC3);
  if (noise) {
    cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
  } else {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        image.at<cv::Vec3b>(y, x) = cv::Vec3b(x % 256, y % 256, (x + y) % 256);
      }
    }
  }
  std::vector<uchar> bytes;
  cv::imencode(".jpg", image, bytes, {cv::IMWRITE_JPEG_QUALITY, 95});
  return std::string(bytes.begin(), bytes.end());
}

using ::conveyor::testing::WriteFile;

// One stack for the whole suite: starting it takes a second or two.
class CliTest : public ::testing::Test {
 protected:
  struct Stack {
    conveyor::testing::TempDir dir;
    conveyor::testing::WebhookSecretsFile webhook_secrets;
    conveyor::testing::RedisServer redis;
    std::vector<std::unique_ptr<conveyor::testing::ServerProcess>> processes;
    std::string orchestrator;
    std::vector<std::string> orchestrator_flags;  // --redis-url and the targets
    std::string out_dir;
    std::string image;
    std::atomic<int> flaky_calls{0};
    std::atomic<int> webhooks{0};
    // Last, so destroyed first: its handler threads read `image` and the
    // counters until it has stopped (ASan: heap-use-after-free otherwise,
    // from a /slow.jpg handler woken by the teardown).
    conveyor::testing::HttpTestServer http;
  };
  static inline Stack* stack_ = nullptr;

  static void SetUpTestSuite() {
    stack_ = new Stack();
    Stack& s = *stack_;
    s.out_dir = s.dir.path() + "/out";
    std::filesystem::create_directories(s.out_dir);
    s.image = MakeJpeg(320, 240, false);

    s.http.http().Get("/img.jpg", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(stack_->image, "image/jpeg");
    });
    s.http.http().Get("/missing.jpg",
                      [](const httplib::Request&, httplib::Response& res) { res.status = 404; });
    s.http.http().Get("/slow2.jpg", [](const httplib::Request&, httplib::Response& res) {
      stack_->http.SleepUnlessStopping(absl::Milliseconds(1500));
      res.set_content(stack_->image, "image/jpeg");
    });
    s.http.http().Get("/slow.jpg", [](const httplib::Request&, httplib::Response& res) {
      stack_->http.SleepUnlessStopping(absl::Seconds(20));
      res.set_content(stack_->image, "image/jpeg");
    });
    // 404 on the first call, the image afterwards: a chain that fails, then
    // succeeds on `conveyor retry`.
    s.http.http().Get("/flaky.jpg", [](const httplib::Request&, httplib::Response& res) {
      if (stack_->flaky_calls++ == 0) {
        res.status = 404;
        return;
      }
      res.set_content(stack_->image, "image/jpeg");
    });
    s.http.http().Post("/hook", [](const httplib::Request&, httplib::Response& res) {
      ++stack_->webhooks;
      res.status = 200;
    });
    s.http.Start();

    const auto start = [&](const std::string& name, std::vector<std::string> args,
                           std::vector<std::string> env = {}) {
      std::vector<std::string> argv = {kBin + "/" + name};
      argv.insert(argv.end(), args.begin(), args.end());
      s.processes.push_back(std::make_unique<conveyor::testing::ServerProcess>(
          argv, s.dir.path() + "/" + name + ".log", std::move(env)));
      // The port file is written after the bind, so the port accepts
      // connections from here on: no health check meets a closed port (and
      // gRPC's reconnect backoff).
      const int port = s.processes.back()->port();
      const absl::Status serving = s.processes.back()->WaitUntilServing();
      EXPECT_TRUE(serving.ok()) << name << ": " << serving << "\n"
                                << conveyor::testing::ReadFile(s.dir.path() + "/" + name + ".log");
      return conveyor::testing::LoopbackAddress(port);
    };
    const std::string download = start("conveyor-download", {"--allow-private-networks"});
    const std::string resize = start("conveyor-resize", {});
    const std::string filter = start("conveyor-filter", {});
    const std::string upload = start("conveyor-upload", {"--file-root", s.out_dir});
    const std::string webhook =
        start("conveyor-webhook", {"--allow-private-networks"},
              {"CONVEYOR_WEBHOOK_SECRETS_FILE=" + s.webhook_secrets.path()});
    s.orchestrator_flags = {"--redis-url",     s.redis.url(), "--download-target", download,
                            "--resize-target", resize,        "--filter-target",   filter,
                            "--upload-target", upload,        "--webhook-target",  webhook};
    s.orchestrator = start("conveyor-orchestrator", s.orchestrator_flags);
  }

  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }

  // `conveyor --server <stack> args...`.
  static conveyor::testing::CommandResult Cli(std::vector<std::string> args,
                                              const std::string& stdin_path = "") {
    std::vector<std::string> argv = {kBin + "/conveyor", "--server", stack_->orchestrator};
    argv.insert(argv.end(), args.begin(), args.end());
    return conveyor::testing::RunCommand(argv, absl::Seconds(60), NoTokenEnv(), stdin_path);
  }

  static std::string Url(const std::string& path) { return stack_->http.Url(path); }
  static std::string OutUri() { return "file://" + stack_->out_dir; }

  static v1::Chain GetChain(const std::string& name) {
    // Chain errors carry google.rpc details as Any; the JSON parser resolves
    // their types from the linked-in descriptors, so make sure they are.
    google::rpc::ErrorInfo::descriptor();
    google::rpc::BadRequest::descriptor();
    conveyor::testing::CommandResult r = Cli({"get", "--json", name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    v1::Chain chain;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &chain).ok()) << r.out;
    return chain;
  }

  // The first line of a submit's stdout: the chain name.
  static std::string FirstLine(const std::string& text) {
    return std::string(text.substr(0, text.find('\n')));
  }
};

using ::conveyor::testing::Describe;

}  // namespace conveyor::client

#endif  // CONVEYOR_TESTS_CLIENT_CLI_FIXTURE_H_
