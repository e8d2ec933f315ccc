// conveyor-test-flaky-stage: a real gRPC worker for the orchestrator's
// integration tests. It serves ResizeStage and FilterStage, returns the input
// image unchanged, and misbehaves on demand:
//   --fail-times N          the first N calls of each (chain, step) fail
//   --fail-while-exists F   every call fails while file F exists
//   --fail-code CODE        the failure's code (default UNAVAILABLE)
//   --delay D               each call takes D (cancellable)
//   --calls-file F          one line per call: "<chain> <step> <attempt> <outcome>"
// so tests can count how often each step really ran.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "common/grpc_status.h"
#include "common/server.h"
#include "common/server_flags.h"

namespace {

struct Behaviour {
  int fail_times = 0;
  std::string fail_while_exists;
  absl::StatusCode fail_code = absl::StatusCode::kUnavailable;
  absl::Duration delay = absl::ZeroDuration();
  std::string calls_file;
};

class Misbehaver {
 public:
  explicit Misbehaver(Behaviour b) : b_(std::move(b)) {}

  grpc::Status Run(grpc::ServerContext* ctx, const conveyor::v1::StepContext& step,
                   const conveyor::v1::Image& in, conveyor::v1::Image* out) {
    int call_number;
    {
      absl::MutexLock lock(&mu_);
      call_number = ++calls_[{step.chain(), step.step_index()}];
    }
    const absl::Time until = absl::Now() + b_.delay;
    while (absl::Now() < until) {
      if (ctx->IsCancelled()) {
        Record(step, "cancelled");
        return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      }
      absl::SleepFor(std::min(absl::Milliseconds(10), until - absl::Now()));
    }
    bool fail = call_number <= b_.fail_times;
    if (!b_.fail_while_exists.empty() && std::ifstream(b_.fail_while_exists).good()) fail = true;
    if (fail) {
      Record(step, "fail");
      return conveyor::ToGrpcStatus(absl::Status(
          b_.fail_code, absl::StrCat("flaky stage: scripted failure on call ", call_number)));
    }
    *out = in;
    Record(step, "ok");
    return grpc::Status::OK;
  }

 private:
  void Record(const conveyor::v1::StepContext& step, const char* outcome) {
    if (b_.calls_file.empty()) return;
    absl::MutexLock lock(&mu_);
    std::ofstream f(b_.calls_file, std::ios::app);
    f << step.chain() << " " << step.step_index() << " " << step.attempt() << " " << outcome
      << "\n";
  }

  const Behaviour b_;
  absl::Mutex mu_;
  std::map<std::pair<std::string, int>, int> calls_ ABSL_GUARDED_BY(mu_);
};

class FlakyResize final : public conveyor::v1::ResizeStage::Service {
 public:
  explicit FlakyResize(Misbehaver& m) : m_(m) {}
  grpc::Status Resize(grpc::ServerContext* ctx, const conveyor::v1::ResizeRequest* req,
                      conveyor::v1::ResizeResponse* resp) override {
    return m_.Run(ctx, req->context(), req->image(), resp->mutable_image());
  }

 private:
  Misbehaver& m_;
};

class FlakyFilter final : public conveyor::v1::FilterStage::Service {
 public:
  explicit FlakyFilter(Misbehaver& m) : m_(m) {}
  grpc::Status Filter(grpc::ServerContext* ctx, const conveyor::v1::FilterRequest* req,
                      conveyor::v1::FilterResponse* resp) override {
    return m_.Run(ctx, req->context(), req->image(), resp->mutable_image());
  }

 private:
  Misbehaver& m_;
};

}  // namespace

int main(int argc, char** argv) {
  conveyor::BlockTerminationSignals();
  CLI::App app{"conveyor-test-flaky-stage: a ResizeStage/FilterStage worker that fails on demand"};
  conveyor::ServerOptions options;
  options.listen = "127.0.0.1:50062";
  conveyor::AddServerFlags(app, options);
  Behaviour b;
  std::string code_name = "UNAVAILABLE";
  app.add_option("--fail-times", b.fail_times, "first N calls per (chain, step) fail");
  app.add_option("--fail-while-exists", b.fail_while_exists, "fail while this file exists");
  app.add_option("--fail-code", code_name, "UNAVAILABLE, INVALID_ARGUMENT, ...")
      ->capture_default_str();
  conveyor::AddDurationFlag(app, "--delay", b.delay, "time each call takes",
                            "CONVEYOR_TEST_DELAY");
  app.add_option("--calls-file", b.calls_file, "append one line per call here");
  if (auto exit_code = conveyor::ParseCommandLine(app, argc, argv)) return *exit_code;
  bool found = false;
  for (int c = 1; c <= 16; ++c) {
    if (absl::StatusCodeToString(static_cast<absl::StatusCode>(c)) == code_name) {
      b.fail_code = static_cast<absl::StatusCode>(c);
      found = true;
    }
  }
  if (!found) {
    std::fprintf(stderr, "--fail-code: unknown code %s\n", code_name.c_str());
    return 2;
  }
  Misbehaver m(b);
  FlakyResize resize(m);
  FlakyFilter filter(m);
  return conveyor::RunServer(options, {&resize, &filter});
}
