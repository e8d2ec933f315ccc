#include "client/chain_filter_flags.h"

#include <gtest/gtest.h>

#include "common/proto_time.h"

namespace conveyor::client {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1764590400);  // 2025-12-01T12:00:00Z

TEST(ChainFilterFlagsTest, BuildsEveryField) {
  FilterFlags f;
  f.state = "failed";
  f.labels = {"team=web", "run=7"};
  f.stage = "Resize";
  f.error_reason = " UNAVAILABLE ";
  f.since = "1h";
  f.before = "2025-12-01T11:30:00Z";
  f.ended_after = "30m";
  f.ended_before = "10m";
  EXPECT_FALSE(FilterFlagsEmpty(f));
  absl::StatusOr<conveyor::v1::ChainFilter> filter = BuildChainFilter(f, kNow);
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_EQ(filter->state(), conveyor::v1::FAILED);
  EXPECT_EQ(filter->labels().at("team"), "web");
  EXPECT_EQ(filter->labels().at("run"), "7");
  EXPECT_EQ(filter->stage(), conveyor::v1::STAGE_KIND_RESIZE);
  EXPECT_EQ(filter->error_reason(), "UNAVAILABLE");
  EXPECT_EQ(FromProtoTime(filter->create_time_after()), kNow - absl::Hours(1));
  EXPECT_EQ(FromProtoTime(filter->create_time_before()), kNow - absl::Minutes(30));
  EXPECT_EQ(FromProtoTime(filter->end_time_after()), kNow - absl::Minutes(30));
  EXPECT_EQ(FromProtoTime(filter->end_time_before()), kNow - absl::Minutes(10));

  conveyor::v1::ListChainsRequest list;
  ApplyToListRequest(*filter, list);
  EXPECT_EQ(list.state(), conveyor::v1::FAILED);
  EXPECT_EQ(list.stage(), conveyor::v1::STAGE_KIND_RESIZE);
  EXPECT_EQ(list.error_reason(), "UNAVAILABLE");
  EXPECT_EQ(list.labels_size(), 2);
  EXPECT_TRUE(list.has_create_time_after());
  EXPECT_TRUE(list.has_end_time_before());
}

TEST(ChainFilterFlagsTest, UnsetFlagsLeaveFieldsUnset) {
  FilterFlags f;
  EXPECT_TRUE(FilterFlagsEmpty(f));
  f.stage = "upload";
  absl::StatusOr<conveyor::v1::ChainFilter> filter = BuildChainFilter(f, kNow);
  ASSERT_TRUE(filter.ok());
  EXPECT_EQ(filter->state(), conveyor::v1::STATE_UNSPECIFIED);
  EXPECT_FALSE(filter->has_create_time_after());
  EXPECT_FALSE(filter->has_end_time_after());
  EXPECT_TRUE(filter->error_reason().empty());
}

TEST(ChainFilterFlagsTest, BadValuesNameTheFlag) {
  FilterFlags f;
  f.stage = "thumbnail";
  EXPECT_EQ(BuildChainFilter(f, kNow).status().message(),
            "--stage: want one of download, resize, filter, upload, webhook, got \"thumbnail\"");
  f = FilterFlags();
  f.ended_after = "yesterday";
  absl::StatusOr<conveyor::v1::ChainFilter> bad = BuildChainFilter(f, kNow);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--ended-after"), absl::string_view::npos);
  f = FilterFlags();
  f.labels = {"novalue"};
  EXPECT_EQ(BuildChainFilter(f, kNow).status().code(), absl::StatusCode::kInvalidArgument);
  f = FilterFlags();
  f.state = "done";
  EXPECT_EQ(BuildChainFilter(f, kNow).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChainFilterFlagsTest, ConfirmationQuestionAndAnswers) {
  EXPECT_EQ(ConfirmQuestion("retry", 37), "Retry 37 chains? [y/N] ");
  EXPECT_EQ(ConfirmQuestion("cancel", 1), "Cancel 1 chain? [y/N] ");
  EXPECT_EQ(ConfirmQuestion("purge", 2), "Purge 2 chains? [y/N] ");
  EXPECT_TRUE(IsYes("y"));
  EXPECT_TRUE(IsYes(" YES\r"));
  EXPECT_TRUE(IsYes("Yes"));
  EXPECT_FALSE(IsYes(""));
  EXPECT_FALSE(IsYes("n"));
  EXPECT_FALSE(IsYes("yep"));
  EXPECT_FALSE(IsYes("no"));
}

}  // namespace
}  // namespace conveyor::client
