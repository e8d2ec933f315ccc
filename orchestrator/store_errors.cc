#include "orchestrator/store_errors.h"

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/status_details.h"

namespace conveyor::orchestrator {

namespace {

// The word a Redis error reply starts with ("OOM", "WRONGTYPE", "ERR"), or ""
// if `message` does not look like one. RedisConnection (StatusFromRedisError)
// turns error replies into INTERNAL(<reply text>), or, for transient and
// out-of-memory replies, UNAVAILABLE / RESOURCE_EXHAUSTED("redis: <reply
// text>"); our own messages never start so.
std::string RedisErrorWord(const absl::Status& status) {
  absl::string_view m = status.message();
  if (status.code() == absl::StatusCode::kUnavailable ||
      status.code() == absl::StatusCode::kResourceExhausted) {
    if (!absl::ConsumePrefix(&m, "redis: ")) return "";
  } else if (status.code() != absl::StatusCode::kInternal) {
    return "";
  }
  const size_t end = std::min(m.find(' '), m.size());
  if (end < 2 || end > 16) return "";
  for (char c : m.substr(0, end)) {
    if (!absl::ascii_isupper(static_cast<unsigned char>(c))) return "";
  }
  return std::string(m.substr(0, end));
}

}  // namespace

absl::Status PublicStoreError(const absl::Status& status) {
  const std::string word = RedisErrorWord(status);
  if (word.empty()) return status;
  // The raw reply can name keys and script lines: log it, do not return it.
  LogLine(LogLevel::kWarning).Add("msg", "redis error reply").Add("redis_error", status.message());
  if (word == "OOM") {
    return WithErrorReason(
        absl::ResourceExhaustedError(
            "Redis is out of memory (maxmemory reached) and refuses writes; nothing was "
            "written. Retry later, or free space with PurgeChains"),
        "STORE_OUT_OF_MEMORY");
  }
  static constexpr absl::string_view kTransient[] = {"LOADING",    "BUSY",     "READONLY",
                                                     "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                                                     "NOREPLICAS", "MISCONF"};
  for (absl::string_view w : kTransient) {
    if (word == w) {
      return absl::UnavailableError(
          absl::StrCat("Redis cannot serve this right now (", word, "); retry later"));
    }
  }
  return absl::InternalError(
      absl::StrCat("the chain store failed (Redis ", word, "); see the orchestrator log"));
}

}  // namespace conveyor::orchestrator
