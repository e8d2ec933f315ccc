#include "client/flag_values.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "tests/client/expect_flag_error.h"

namespace conveyor::client {
namespace {

TEST(FlagValuesTest, Durations) {
  EXPECT_EQ(*ParseDurationFlag("--x", "500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDurationFlag("--x", "1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDurationFlag("--x", "2d"), absl::Hours(48));
  EXPECT_EQ(*ParseDurationFlag("--x", "1d12h"), absl::Hours(36));
  for (const char* bad : {"", "0", "0s", "-5s", "5", "d", "xd", "inf", "5 parsecs"}) {
    EXPECT_EQ(ParseDurationFlag("--x", bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(FlagValuesTest, TimeFlagTakesRfc3339OrAgo) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  EXPECT_EQ(*ParseTimeFlag("--since", "1h", now), now - absl::Hours(1));
  EXPECT_EQ(*ParseTimeFlag("--since", "2026-11-26T10:00:00Z", now),
            absl::FromCivil(absl::CivilSecond(2026, 11, 26, 10, 0, 0), absl::UTCTimeZone()));
  ExpectFlagError(ParseTimeFlag("--since", "yesterday", now).status(), "--since", "\"yesterday\"");
}

TEST(FlagValuesTest, StateFlag) {
  EXPECT_EQ(*ParseStateFlag("--state", "succeeded"), v1::SUCCEEDED);
  EXPECT_EQ(*ParseStateFlag("--state", "Running"), v1::RUNNING);
  ExpectFlagError(ParseStateFlag("--state", "done").status(), "--state", "\"done\"");
  ExpectFlagError(ParseStateFlag("--state", "state_unspecified").status(), "--state",
                  "want one of");
  ExpectFlagError(
      ParseStateFlag("--state", "running", {v1::SUCCEEDED, v1::FAILED, v1::CANCELLED}).status(),
      "--state", "want one of succeeded, failed, cancelled");
}

TEST(FlagValuesTest, BatchLinesSkipBlanksAndComments) {
  EXPECT_EQ(ParseBatchLines("http://127.0.0.1/a.jpg\n\n  # comment\n  /tmp/b.png  \r\nlast"),
            (std::vector<std::string>{"http://127.0.0.1/a.jpg", "/tmp/b.png", "last"}));
  EXPECT_TRUE(ParseBatchLines("\n# only\n").empty());
  EXPECT_TRUE(IsHttpUrl("https://x/y"));
  EXPECT_FALSE(IsHttpUrl("/tmp/http://x"));
}

}  // namespace
}  // namespace conveyor::client
