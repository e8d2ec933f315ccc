#include "client/flag_values.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace conveyor::client {

using conveyor::v1::Priority;
using conveyor::v1::State;

absl::Status FlagError(absl::string_view flag, absl::string_view description) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", description));
}

std::string Quote(absl::string_view text) { return absl::StrCat("\"", text, "\""); }

absl::StatusOr<Priority> ParsePriority(absl::string_view text) {
  const std::string priority = absl::AsciiStrToLower(text);
  if (priority == "low") return conveyor::v1::PRIORITY_LOW;
  if (priority == "normal") return conveyor::v1::PRIORITY_NORMAL;
  if (priority == "high") return conveyor::v1::PRIORITY_HIGH;
  return FlagError("--priority", absl::StrCat("want low, normal or high, got ", Quote(text)));
}

absl::StatusOr<std::pair<std::string, std::string>> ParseLabel(absl::string_view text) {
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return FlagError("--label", absl::StrCat("want key=value, got ", Quote(text)));
  }
  return std::make_pair(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
}

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag, absl::string_view text) {
  const auto bad = [&] {
    return FlagError(flag, absl::StrCat("want a duration such as 500ms, 30s, 5m, 1h30m or 2d, "
                                        "got ",
                                        Quote(text)));
  };
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  absl::Duration total = absl::ZeroDuration();
  // absl::ParseDuration stops at hours; days are handy for --older-than.
  const size_t d = rest.find('d');
  if (d != absl::string_view::npos) {
    double days = 0;
    if (d == 0 || !absl::SimpleAtod(rest.substr(0, d), &days) || !std::isfinite(days)) {
      return bad();
    }
    total += absl::Hours(24) * days;
    rest = rest.substr(d + 1);
  }
  if (!rest.empty()) {
    absl::Duration part;
    if (rest == "0" || !absl::ParseDuration(rest, &part) || part == absl::InfiniteDuration()) {
      return bad();
    }
    total += part;
  }
  if (total <= absl::ZeroDuration()) {
    return FlagError(flag, absl::StrCat("want a positive duration, got ", Quote(text)));
  }
  return total;
}

absl::StatusOr<absl::Time> ParseTimeFlag(absl::string_view flag, absl::string_view text,
                                         absl::Time now) {
  absl::Time t;
  std::string ignored;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &ignored)) return t;
  absl::StatusOr<absl::Duration> ago = ParseDurationFlag(flag, text);
  if (!ago.ok()) {
    return FlagError(flag,
                     absl::StrCat("want an RFC 3339 time (2026-11-26T10:00:00Z) or a duration "
                                  "ago (30m, 2h, 1d), got ",
                                  Quote(text)));
  }
  return now - *ago;
}

absl::StatusOr<State> ParseStateFlag(absl::string_view flag, absl::string_view text,
                                     const std::vector<State>& allowed) {
  const std::string upper = absl::AsciiStrToUpper(text);
  State state = conveyor::v1::STATE_UNSPECIFIED;
  const bool parsed =
      conveyor::v1::State_Parse(upper, &state) && state != conveyor::v1::STATE_UNSPECIFIED;
  bool ok = parsed;
  if (parsed && !allowed.empty()) {
    ok = false;
    for (State s : allowed) ok = ok || s == state;
  }
  if (!ok) {
    std::vector<std::string> names;
    if (allowed.empty()) {
      for (int i = conveyor::v1::PENDING; i <= conveyor::v1::CANCELLED; ++i) {
        names.push_back(absl::AsciiStrToLower(conveyor::v1::State_Name(static_cast<State>(i))));
      }
    } else {
      for (State s : allowed) names.push_back(absl::AsciiStrToLower(conveyor::v1::State_Name(s)));
    }
    return FlagError(
        flag, absl::StrCat("want one of ", absl::StrJoin(names, ", "), ", got ", Quote(text)));
  }
  return state;
}

std::vector<std::string> ParseBatchLines(absl::string_view text) {
  std::vector<std::string> items;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    items.emplace_back(line);
  }
  return items;
}

bool IsHttpUrl(absl::string_view text) {
  return absl::StartsWith(text, "http://") || absl::StartsWith(text, "https://");
}

}  // namespace conveyor::client
