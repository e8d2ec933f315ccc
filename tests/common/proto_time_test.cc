#include "common/proto_time.h"

#include <gtest/gtest.h>

namespace conveyor {
namespace {

TEST(ProtoTimeTest, TimesConvertExactlyWithNanosNeverNegative) {
  const struct {
    absl::Time time;
    int64_t seconds;
    int32_t nanos;
  } cases[] = {
      {absl::UnixEpoch(), 0, 0},
      {absl::FromUnixSeconds(1795000000) + absl::Nanoseconds(123456789), 1795000000, 123456789},
      // Before 1970 the seconds round down, so nanos stay in [0, 1e9).
      {absl::UnixEpoch() - absl::Milliseconds(1500), -2, 500000000},
  };
  for (const auto& c : cases) {
    const google::protobuf::Timestamp ts = ToProtoTime(c.time);
    EXPECT_EQ(ts.seconds(), c.seconds) << c.time;
    EXPECT_EQ(ts.nanos(), c.nanos) << c.time;
    EXPECT_EQ(FromProtoTime(ts), c.time);
  }
  EXPECT_EQ(FromProtoTime(google::protobuf::Timestamp()), absl::UnixEpoch());
}

TEST(ProtoTimeTest, DurationsConvertExactlyWithOneSign) {
  const struct {
    absl::Duration duration;
    int64_t seconds;
    int32_t nanos;
  } cases[] = {
      {absl::ZeroDuration(), 0, 0},
      {absl::Minutes(90) + absl::Nanoseconds(7), 5400, 7},
      {absl::Milliseconds(1500), 1, 500000000},
      {-absl::Milliseconds(1500), -1, -500000000},
  };
  for (const auto& c : cases) {
    const google::protobuf::Duration d = ToProtoDuration(c.duration);
    EXPECT_EQ(d.seconds(), c.seconds) << c.duration;
    EXPECT_EQ(d.nanos(), c.nanos) << c.duration;
    EXPECT_EQ(FromProtoDuration(d), c.duration);
  }
}

TEST(ProtoTimeTest, MillisecondsRoundTrip) {
  const absl::Time t = absl::FromUnixMillis(1'800'000'000'123);
  EXPECT_EQ(FromProtoTime(ToProtoTime(t)), t);
  EXPECT_EQ(FromProtoDuration(ToProtoDuration(absl::Milliseconds(1500))), absl::Milliseconds(1500));
  EXPECT_EQ(ToProtoDuration(absl::Milliseconds(1500)).nanos(), 500'000'000);
}

}  // namespace
}  // namespace conveyor
