// Runs a command to completion with separate stdout/stderr capture, for the
// tests that drive the real `conveyor` binary and tools/demo.sh.
#ifndef CONVEYOR_TESTS_TESTING_COMMAND_RUNNER_H_
#define CONVEYOR_TESTS_TESTING_COMMAND_RUNNER_H_

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace conveyor::testing {

struct CommandResult {
  int exit_code = -1;  // 128+N if killed by signal N; -1 if it timed out
  std::string out;
  std::string err;
};

// "exit N", then stdout and stderr: what an assertion on a command prints.
std::string Describe(const CommandResult& result);

// Runs argv[0] (a path) with `argv`, stdin from `stdin_path` (or /dev/null),
// plus `extra_env` ("K=V") on top of this process's environment. Kills it
// (SIGKILL, whole process group) after `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(60),
                         const std::vector<std::string>& extra_env = {},
                         const std::string& stdin_path = "");

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_COMMAND_RUNNER_H_
