// One structured log line per event, logfmt style:
//   level=info rpc=conveyor.v1.ResizeStage/Resize chain=chains/7f3 step=2 code=OK ms=184
//
// Debian 12's Abseil predates absl/log, hence this small writer. Each line is
// written with one write(2) to stderr, so lines from concurrent threads never
// interleave. Never log image bytes or secrets.
#ifndef CONVEYOR_COMMON_LOG_H_
#define CONVEYOR_COMMON_LOG_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

namespace conveyor {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Lines below this level are dropped. Default kInfo; set once at start-up.
void SetMinLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Builds one line; emits it when destroyed.
//   LogLine(LogLevel::kInfo).Add("rpc", name).Add("ms", 12);
class LogLine {
 public:
  explicit LogLine(LogLevel level);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  // Values with spaces, quotes or '=' are quoted and escaped.
  LogLine& Add(absl::string_view key, absl::string_view value);
  LogLine& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  LogLine& Add(absl::string_view key, int64_t value);
  LogLine& Add(absl::string_view key, int value) { return Add(key, int64_t{value}); }
  LogLine& Add(absl::string_view key, double value);

 private:
  bool enabled_;
  std::string line_;
};

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_LOG_H_
