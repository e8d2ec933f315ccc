#include "absl/strings/string_view.h"
#include "common/log.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace conveyor {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};

absl::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

bool NeedsQuotes(absl::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      return true;
    }
  }
  return false;
}

}  // namespace

void SetMinLogLevel(LogLevel level) { min_level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= min_level.load(); }

LogLine::LogLine(LogLevel level) : enabled_(LogEnabled(level)) {
  if (!enabled_) return;
  line_ = absl::StrCat("ts=", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                                absl::UTCTimeZone()),
                       " level=", LevelName(level));
}

LogLine::~LogLine() {
  if (!enabled_) return;
  line_.push_back('\n');
  // One write per line: concurrent lines do not interleave.
  [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, line_.data(), line_.size());
}

LogLine& LogLine::Add(absl::string_view key, absl::string_view value) {
  if (!enabled_) return *this;
  absl::StrAppend(&line_, " ", key, "=");
  if (!NeedsQuotes(value)) {
    line_.append(value.data(), value.size());
    return *this;
  }
  line_.push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') {
      line_.push_back('\\');
      line_.push_back(c);
    } else if (c == '\n') {
      line_.append("\\n");
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&line_, absl::StrFormat("\\x%02x", c));
    } else {
      line_.push_back(c);
    }
  }
  line_.push_back('"');
  return *this;
}

LogLine& LogLine::Add(absl::string_view key, int64_t value) {
  if (enabled_) absl::StrAppend(&line_, " ", key, "=", value);
  return *this;
}

LogLine& LogLine::Add(absl::string_view key, double value) {
  if (enabled_) absl::StrAppend(&line_, " ", key, "=", absl::StrFormat("%.3f", value));
  return *this;
}

}  // namespace conveyor
