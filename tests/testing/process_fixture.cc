#include "tests/testing/process_fixture.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace conveyor::testing {

int PickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
  }
  ::close(fd);
  return port;
}

std::string LoopbackAddress(int port) { return absl::StrCat("127.0.0.1:", port); }

ScopedProcess::ScopedProcess(std::vector<std::string> argv, std::string log_path,
                             std::vector<std::string> extra_env)
    : start_time_(absl::Now()), log_path_(std::move(log_path)) {
  std::vector<char*> args;
  for (auto& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    // Child: own process group, so a test's SIGKILL never reaches the runner.
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!log_path_.empty()) {
      int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
      }
    }
    // Servers refuse to start without TLS flags or --insecure: tests run
    // plaintext unless they ask for TLS (TLS flags win over it; a test of
    // the refusal passes CONVEYOR_INSECURE=0 in extra_env).
    ::setenv("CONVEYOR_INSECURE", "1", /*overwrite=*/0);
    // The orchestrator refuses to start without a source of caller
    // identity: tests call it as an anonymous caller with every scope unless
    // they configure authentication (OrchestratorProcess passes
    // CONVEYOR_ALLOW_ANONYMOUS=0 when its flags do; so should any test of
    // a refusal).
    ::setenv("CONVEYOR_ALLOW_ANONYMOUS", "1", /*overwrite=*/0);
    ::setenv("CONVEYOR_ANONYMOUS_SCOPES", "chains.submit,chains.read,chains.cancel,admin",
             /*overwrite=*/0);
    for (auto& kv : extra_env) ::putenv(kv.data());
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

ScopedProcess::~ScopedProcess() { Kill(); }

bool ScopedProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t done = ::waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    Reaped(std::exchange(pid_, -1));
    return false;
  }
  return true;
}

void ScopedProcess::Signal(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

int ScopedProcess::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (running()) {
    if (absl::Now() > deadline) return -1;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return exit_code_;
}

void ScopedProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  exit_code_ = 128 + SIGKILL;
  Reaped(std::exchange(pid_, -1));
}

void ScopedProcess::Reaped(pid_t pid) {
  // The sanitizers write <dir>/{asan,ubsan}.<pid> (log_path in tools/test.sh),
  // not the child's stderr: a report would otherwise pass unnoticed when the
  // test only sees UNAVAILABLE, or kills the child anyway.
  const char* dir = std::getenv("CONVEYOR_SANITIZER_REPORTS");
  if (dir == nullptr || *dir == '\0') return;
  for (const char* kind : {"asan", "ubsan"}) {
    const std::string path = absl::StrCat(dir, "/", kind, ".", pid);
    struct stat info;
    if (::stat(path.c_str(), &info) != 0) continue;
    // Pids are reused: an older report is another process's.
    if (absl::TimeFromTimespec(info.st_mtim) < start_time_) continue;
    std::fprintf(stderr, "process_fixture: sanitizer report of child %d (%s):\n%s\n", pid,
                 path.c_str(), ReadFile(path).c_str());
    std::abort();
  }
}

namespace {

// True once something accepts TCP connections on host:port (IPv4 loopback
// forms only, which is all the tests use).
bool AcceptsConnections(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  int port = std::atoi(address.c_str() + colon + 1);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

absl::Status WaitForGrpcServing(const std::string& address, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::string last_error = "port not accepting connections";
  // Wait for the port first: a gRPC channel that meets a closed port backs off
  // for seconds before it tries again.
  while (absl::Now() < deadline && !AcceptsConnections(address)) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  while (absl::Now() < deadline) {
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    auto stub = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    context.set_wait_for_ready(true);
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, request, &response);
    if (status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return absl::OkStatus();
    }
    last_error = status.ok() ? "NOT_SERVING" : status.error_message();
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat(address, " not serving after ",
                                                  absl::FormatDuration(timeout), ": ", last_error));
}

namespace {

// The last `lines` lines of a log file, for failure messages.
std::string LogTail(const std::string& path, int lines = 5) {
  if (path.empty()) return "";
  std::string text = ReadFile(path);
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (int n = 0; n < lines && pos != std::string::npos && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
  }
  return pos == std::string::npos ? text : text.substr(pos + 1);
}

}  // namespace

absl::StatusOr<int> WaitForPortFile(const std::string& port_file, ScopedProcess& process,
                                    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    // The server renames a complete file into place: any content is whole.
    std::string text = ReadFile(port_file);
    if (!text.empty()) {
      int port = std::atoi(text.c_str());
      if (port > 0 && port < 65536) return port;
      return absl::InternalError(absl::StrCat(port_file, ": not a port: \"", text, "\""));
    }
    if (!process.running()) {
      return absl::FailedPreconditionError(
          absl::StrCat("server exited (code ", process.Wait(absl::ZeroDuration()),
                       ") before writing ", port_file, ": ", LogTail(process.log_path())));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("no port in ", port_file, " after ",
                                                      absl::FormatDuration(timeout), ": ",
                                                      LogTail(process.log_path())));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

ServerProcess::ServerProcess(std::vector<std::string> argv, std::string log_path,
                             std::vector<std::string> extra_env, int port,
                             absl::Duration start_timeout) {
  char pattern[] = "/tmp/conveyor-server-XXXXXX";
  const char* made = ::mkdtemp(pattern);
  dir_ = made != nullptr ? made : "/tmp";
  const std::string port_file = dir_ + "/port";
  argv.push_back("--listen");
  argv.push_back(LoopbackAddress(port));
  argv.push_back("--port-file");
  argv.push_back(port_file);
  process_ =
      std::make_unique<ScopedProcess>(std::move(argv), std::move(log_path), std::move(extra_env));
  absl::StatusOr<int> bound = WaitForPortFile(port_file, *process_, start_timeout);
  if (bound.ok()) {
    port_ = *bound;
  } else {
    started_ = bound.status();
  }
}

ServerProcess::~ServerProcess() {
  process_.reset();
  std::error_code ignored;
  if (dir_ != "/tmp") std::filesystem::remove_all(dir_, ignored);
}

std::string ServerProcess::address() const { return LoopbackAddress(port_); }

absl::Status ServerProcess::WaitUntilServing(absl::Duration timeout) {
  if (!started_.ok()) return started_;
  return WaitForGrpcServing(address(), timeout);
}

absl::Status WaitForRedis(int port, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    timeval tv{0, 200000};
    redisContext* ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (ctx != nullptr && ctx->err == 0) {
      auto* reply = static_cast<redisReply*>(redisCommand(ctx, "PING"));
      bool ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS &&
                std::string(reply->str) == "PONG";
      if (reply != nullptr) freeReplyObject(reply);
      redisFree(ctx);
      if (ok) return absl::OkStatus();
    } else if (ctx != nullptr) {
      redisFree(ctx);
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("redis on port ", port, " not answering"));
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "conveyor-test-XXXXXX").string();
  char* made = ::mkdtemp(pattern.data());
  path_ = made != nullptr ? std::string(made) : std::string();
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

RedisServer::RedisServer(RedisServerOptions options) : options_(options) {
  char pattern[] = "/tmp/conveyor-redis-XXXXXX";
  dir_ = ::mkdtemp(pattern);
  // redis-server exits on a port in use (no SO_REUSEPORT), so a port taken
  // between PickFreePort and its bind shows as an early exit: try another.
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = PickFreePort();
    if (Launch()) return;
  }
  std::fprintf(stderr, "redis-server did not start: %s\n", LogTail(dir_ + "/redis.log").c_str());
  std::abort();
}

bool RedisServer::Launch() {
  process_ = std::make_unique<ScopedProcess>(
      std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind",
                               "127.0.0.1", "--save", "", "--appendonly",
                               options_.append_only ? "yes" : "no", "--appendfsync", "everysec",
                               "--dir", dir_},
      dir_ + "/redis.log");
  // Loading a large append-only file takes a while after a restart.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (process_->running() && absl::Now() < deadline) {
    if (WaitForRedis(port_, absl::Milliseconds(100)).ok()) {
      // Ours, not another server that took the port: it answers from the
      // process we started (an early exit would have ended the loop).
      if (process_->running()) return true;
    }
  }
  return false;
}

void RedisServer::Restart() {
  process_->Kill();
  // The same port: its clients are configured with it. Nothing else took it
  // in the moment since (a clash would show as an early exit).
  if (!Launch()) {
    std::fprintf(stderr, "redis-server did not restart: %s\n",
                 LogTail(dir_ + "/redis.log").c_str());
    std::abort();
  }
}

RedisServer::~RedisServer() {
  process_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string RedisServer::url() const { return absl::StrCat("redis://127.0.0.1:", port_); }

void RedisServer::Kill() { process_->Kill(); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string WriteFile(const std::string& path, const std::string& bytes, mode_t mode) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << bytes;
    out.close();
    if (!out || ::chmod(temp.c_str(), mode) != 0 || std::rename(temp.c_str(), path.c_str()) != 0) {
      std::fprintf(stderr, "WriteFile(%s): %s\n", path.c_str(), std::strerror(errno));
      std::abort();
    }
  }
  return path;
}

void DumpLogs(const std::vector<std::string>& log_paths, bool failed, size_t tail_bytes) {
  if (!failed && std::getenv("CONVEYOR_TEST_DUMP_LOGS") == nullptr) return;
  for (const std::string& path : log_paths) {
    std::string log = ReadFile(path);
    if (tail_bytes > 0 && log.size() > tail_bytes)
      log = "..." + log.substr(log.size() - tail_bytes);
    std::fprintf(stderr, "===== %s\n%s\n", path.c_str(), log.c_str());
  }
}

}  // namespace conveyor::testing
