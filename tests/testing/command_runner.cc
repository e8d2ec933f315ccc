#include "tests/testing/command_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace conveyor::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout,
                         const std::vector<std::string>& extra_env, const std::string& stdin_path) {
  char out_template[] = "/tmp/conveyor-cmd-out.XXXXXX";
  char err_template[] = "/tmp/conveyor-cmd-err.XXXXXX";
  const int out_fd = ::mkstemp(out_template);
  const int err_fd = ::mkstemp(err_template);
  CommandResult result;
  if (out_fd < 0 || err_fd < 0) return result;

  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);  // so a timeout kills the command's children too
    const int in_fd = ::open(stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY);
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    // As ScopedProcess: plaintext to the test's servers unless the test
    // passes TLS flags (which win) or CONVEYOR_INSECURE=0.
    ::setenv("CONVEYOR_INSECURE", "1", /*overwrite=*/0);
    std::vector<std::string> env_copy = extra_env;
    for (std::string& kv : env_copy) ::putenv(kv.data());
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  if (pid > 0) {
    ::setpgid(pid, pid);
    const absl::Time deadline = absl::Now() + timeout;
    int status = 0;
    for (;;) {
      const pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid) {
        result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (absl::Now() >= deadline) {
        ::kill(-pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        result.exit_code = -1;
        break;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  result.out = Slurp(out_template);
  result.err = Slurp(err_template);
  ::unlink(out_template);
  ::unlink(err_template);
  return result;
}

std::string Describe(const CommandResult& result) {
  return absl::StrCat("exit ", result.exit_code, "\nstdout:\n", result.out, "\nstderr:\n",
                      result.err);
}

}  // namespace conveyor::testing
