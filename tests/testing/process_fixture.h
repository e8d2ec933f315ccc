// Real processes for integration tests: redis-server, workers, the
// orchestrator, each on a free loopback port, each stopped by its owner.
#ifndef CONVEYOR_TESTS_TESTING_PROCESS_FIXTURE_H_
#define CONVEYOR_TESTS_TESTING_PROCESS_FIXTURE_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace conveyor::testing {

// A free TCP port on 127.0.0.1: binds port 0 and reads back what the kernel
// chose. Another process could take it before the caller binds it; in
// practice the kernel hands out ports round-robin, so this is rare.
int PickFreePort();

// "127.0.0.1:<port>".
std::string LoopbackAddress(int port);

// A child process started with fork/exec. stdout and stderr go to `log_path`
// (appended), or are inherited if it is empty. The destructor sends SIGKILL
// (if still running) and reaps it.
//
// In the sanitizer build (tools/test.sh sets CONVEYOR_SANITIZER_REPORTS and
// the sanitizers' log_path), a child that wrote an ASan/UBSan/LSan report
// fails the test: once the child is reaped, the report is printed and the
// test process aborts, whatever the test saw of the child.
class ScopedProcess {
 public:
  ScopedProcess(std::vector<std::string> argv, std::string log_path = "",
                std::vector<std::string> extra_env = {});
  ~ScopedProcess();
  ScopedProcess(const ScopedProcess&) = delete;
  ScopedProcess& operator=(const ScopedProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal`; with SIGTERM the process is expected to exit on its own.
  void Signal(int signal);
  // Waits up to `timeout` for exit; returns the exit code (128+N for a
  // signal), or -1 on timeout.
  int Wait(absl::Duration timeout);
  // SIGKILL and reap.
  void Kill();
  const std::string& log_path() const { return log_path_; }

 private:
  void Reaped(pid_t pid);

  pid_t pid_ = -1;
  int exit_code_ = -1;
  absl::Time start_time_;
  std::string log_path_;
};

// Polls `address` with grpc.health.v1.Health/Check (service "") until it
// answers SERVING, or `timeout` passes.
absl::Status WaitForGrpcServing(const std::string& address, absl::Duration timeout);

// Polls redis on 127.0.0.1:`port` with PING until it answers PONG.
absl::Status WaitForRedis(int port, absl::Duration timeout);

// A private redis-server on a free loopback port, persistence off, in a
// temporary directory. Stopped (and its directory removed) on destruction.
class RedisServer {
 public:
  RedisServer();
  ~RedisServer();
  int port() const { return port_; }
  std::string url() const;  // "redis://127.0.0.1:<port>"
  // Stops it (SIGKILL), e.g. to test "Redis unavailable".
  void Kill();

 private:
  std::string dir_;
  int port_;
  std::unique_ptr<ScopedProcess> process_;
};

// A fresh temporary directory, removed recursively on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Reads a whole file; empty string if it cannot.
std::string ReadFile(const std::string& path);

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_PROCESS_FIXTURE_H_
