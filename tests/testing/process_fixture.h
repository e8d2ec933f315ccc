// Real processes for integration tests: redis-server, workers, the
// orchestrator, each on a loopback port, each stopped by its owner.
//
// Servers are started on port 0 and tell the port they bound
// (ServerProcess, via --port-file), never "pick a free port, close it, pass
// the number on": another process can take it in between.
#ifndef CONVEYOR_TESTS_TESTING_PROCESS_FIXTURE_H_
#define CONVEYOR_TESTS_TESTING_PROCESS_FIXTURE_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace conveyor::testing {

// A TCP port on 127.0.0.1 that nothing listened on a moment ago: binds port
// 0, reads back what the kernel chose, closes it. Only for a port that must
// stay closed (a "connection refused" test) or a server that cannot bind 0
// and whose launcher retries on a clash (RedisServer). Start our servers
// with ServerProcess instead.
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

// Polls `port_file` until a server (common/server.h, --port-file)
// wrote its bound port there; fails at once if `process` exits first (its
// log's last lines in the message), or after `timeout`.
absl::StatusOr<int> WaitForPortFile(const std::string& port_file, ScopedProcess& process,
                                    absl::Duration timeout);

// A Conveyor server binary (a worker, the orchestrator) on 127.0.0.1:0 with
// --port-file; the constructor returns once the port is known:
//   ServerProcess worker({bin + "/conveyor-resize", "--max-pixels", "1000"}, log);
//   ASSERT_TRUE(worker.started().ok()) << worker.started();
//   ASSERT_TRUE(worker.WaitUntilServing().ok());
//   ... worker.address() ...
// `argv` holds the binary and its flags, without --listen and --port-file
// (appended here). `port` other than 0 binds that port instead, e.g. to
// restart a killed server where its clients expect it.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> argv, std::string log_path = "",
                         std::vector<std::string> extra_env = {}, int port = 0,
                         absl::Duration start_timeout = absl::Seconds(20));
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // OK once the port was read; why not otherwise.
  const absl::Status& started() const { return started_; }
  // The bound port; 0 unless started().
  int port() const { return port_; }
  // "127.0.0.1:<port>".
  std::string address() const;
  // Until grpc.health.v1 Check("") answers SERVING.
  absl::Status WaitUntilServing(absl::Duration timeout = absl::Seconds(20));
  ScopedProcess& process() { return *process_; }

 private:
  std::string dir_;
  std::unique_ptr<ScopedProcess> process_;
  absl::Status started_;
  int port_ = 0;
};

// Polls `address` with grpc.health.v1.Health/Check (service "") until it
// answers SERVING, or `timeout` passes.
absl::Status WaitForGrpcServing(const std::string& address, absl::Duration timeout);

// Polls redis on 127.0.0.1:`port` with PING until it answers PONG.
absl::Status WaitForRedis(int port, absl::Duration timeout);

struct RedisServerOptions {
  // Append-only file, fsync every second (as the deploy manifests run it):
  // a SIGKILLed server keeps every write it acknowledged.
  bool append_only = false;
};

// A private redis-server on a loopback port, in a temporary directory,
// persistence off unless asked for. Stopped (and its directory removed) on
// destruction. redis-server cannot bind port 0 and report it, but it does
// fail on a port in use: the constructor then tries another port (a few
// times).
class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  int port() const { return port_; }
  std::string url() const;  // "redis://127.0.0.1:<port>"
  // Stops it (SIGKILL), e.g. to test "Redis unavailable".
  void Kill();
  // SIGKILL, then the same server again on the same port and directory
  // (with append_only, with its data); waits until it answers PING.
  void Restart();

 private:
  // Starts redis-server on port_; false if it exited (port in use).
  bool Launch();

  RedisServerOptions options_;
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

// Writes `bytes` to `path` with permission bits `mode` and returns `path`.
// Atomic (a temporary file renamed over `path`), so a process watching the
// file (tokens, keys, secrets reloaded on change) sees the old or the new
// content, never a half-written one. Aborts the test binary if it cannot.
std::string WriteFile(const std::string& path, const std::string& bytes, mode_t mode = 0600);

// Prints each of `log_paths` to stderr (only its last `tail_bytes`, unless
// 0) when `failed` or CONVEYOR_TEST_DUMP_LOGS is set. For a fixture's
// TearDown: DumpLogs(logs_, HasFailure()).
void DumpLogs(const std::vector<std::string>& log_paths, bool failed, size_t tail_bytes = 0);

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_PROCESS_FIXTURE_H_
