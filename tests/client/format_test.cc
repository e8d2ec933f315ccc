#include "client/format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace conveyor::client {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

TEST(FormatTest, RelativeTimes) {
  EXPECT_EQ(FormatRelativeTime(kNow, kNow), "just now");
  EXPECT_EQ(FormatRelativeTime(kNow - absl::Seconds(42), kNow), "42s ago");
  EXPECT_EQ(FormatRelativeTime(kNow - absl::Minutes(5) - absl::Seconds(59), kNow), "5m ago");
  EXPECT_EQ(FormatRelativeTime(kNow - absl::Hours(3), kNow), "3h ago");
  EXPECT_EQ(FormatRelativeTime(kNow - absl::Hours(49), kNow), "2d ago");
  EXPECT_EQ(FormatRelativeTime(kNow + absl::Seconds(30), kNow), "in 30s");
  EXPECT_EQ(FormatRelativeTime(absl::UnixEpoch(), kNow), "-");
}

TEST(FormatTest, Durations) {
  EXPECT_EQ(ShortDuration(absl::Microseconds(850)), "850us");
  EXPECT_EQ(ShortDuration(absl::Microseconds(1500)), "1.5ms");
  EXPECT_EQ(ShortDuration(absl::Milliseconds(184)), "184ms");
  EXPECT_EQ(ShortDuration(absl::Milliseconds(1250)), "1.25s");
  EXPECT_EQ(ShortDuration(absl::Seconds(185)), "3m05s");
  EXPECT_EQ(ShortDuration(absl::Minutes(123)), "2h03m");
}

TEST(FormatTest, Bytes) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(80'281), "78.4 KiB");
  EXPECT_EQ(FormatBytes(2 * 1024 * 1024), "2.0 MiB");
}

TEST(FormatTest, TableAlignsColumnsAndTrimsTrailingSpace) {
  EXPECT_EQ(RenderTable({"A", "LONGER", "C"}, {{"xxxx", "y", ""}, {"z"}}),
            "A     LONGER  C\n"
            "xxxx  y\n"
            "z\n");
}

TEST(FormatTest, ProgressBarClampsAndFills) {
  EXPECT_EQ(ProgressBar(50, 10), "[#####.....]  50%");
  EXPECT_EQ(ProgressBar(0, 4), "[....]   0%");
  EXPECT_EQ(ProgressBar(150, 4), "[####] 100%");
  EXPECT_EQ(ProgressBar(-3, 4), "[....]   0%");
}

TEST(FormatTest, CodeNames) {
  EXPECT_EQ(CodeName(5), "NOT_FOUND");
  EXPECT_EQ(CodeName(14), "UNAVAILABLE");
  EXPECT_EQ(CodeName(99), "99");
}
}  // namespace
}  // namespace conveyor::client
