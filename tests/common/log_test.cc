#include "common/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace conveyor {
namespace {

// Captures what LogLine writes to stderr.
std::string CaptureStderr(void (*write_lines)()) {
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  FILE* tmp = tmpfile();
  dup2(fileno(tmp), STDERR_FILENO);
  write_lines();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  rewind(tmp);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), tmp)) > 0) out.append(buffer, n);
  fclose(tmp);
  return out;
}

TEST(LogTest, WritesOneLogfmtLineWithQuotedValues) {
  std::string out = CaptureStderr([] {
    LogLine(LogLevel::kInfo).Add("rpc", "conveyor.v1.ResizeStage/Resize").Add("ms", 1.5)
        .Add("n", 3).Add("error", "bad \"thing\" = x");
  });
  EXPECT_NE(out.find(" level=info rpc=conveyor.v1.ResizeStage/Resize ms=1.500 n=3 "
                     "error=\"bad \\\"thing\\\" = x\"\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.rfind("ts=", 0), 0u);
}

TEST(LogTest, DropsLinesBelowTheMinimumLevel) {
  SetMinLogLevel(LogLevel::kWarning);
  std::string out = CaptureStderr([] { LogLine(LogLevel::kInfo).Add("a", "b"); });
  SetMinLogLevel(LogLevel::kInfo);
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace conveyor
