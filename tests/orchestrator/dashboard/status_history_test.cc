// The status ring: bounded, incremental reads, and what non-admins see.
#include "orchestrator/dashboard/status_history.h"

#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "orchestrator/chain_api.h"

namespace conveyor::orchestrator::dashboard {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kStart = absl::FromUnixSeconds(1767225600);

conveyor::v1::SystemStatus Status(int64_t queued) {
  conveyor::v1::SystemStatus s;
  conveyor::v1::StageStatus* stage = s.add_stages();
  stage->set_kind(conveyor::v1::STAGE_KIND_RESIZE);
  stage->set_health(conveyor::v1::StageStatus::SERVING);
  stage->set_target("127.0.0.1:50062");
  stage->set_queued(queued);
  stage->set_in_flight(2);
  stage->set_waiting(1);
  s.add_replicas()->set_name("replica-1");
  s.set_redis_reachable(true);
  s.set_blob_bytes(4096);
  (*s.mutable_chains_by_state())["RUNNING"] = 3;
  return s;
}

const Caller kAdmin{"ops", "*", Scopes::All()};
const Caller kReader{"bob", "tenant-a", Scopes().Add(Scope::kRead)};

TEST(StatusHistoryTest, KeepsTheNewestCapacitySamples) {
  StatusHistory history(3);
  for (int i = 0; i < 5; ++i) history.Add(kStart + absl::Seconds(i), Status(i));
  std::vector<StatusSample> samples = history.Samples();
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].status.stages(0).queued(), 2);
  EXPECT_EQ(samples[2].status.stages(0).queued(), 4);
  EXPECT_EQ(history.added(), 5);
}

TEST(StatusHistoryTest, SamplesAfterGivesOnlyNewOnes) {
  StatusHistory history(3);
  int64_t added = -1;
  EXPECT_TRUE(history.SamplesAfter(0, &added).empty());
  EXPECT_EQ(added, 0);
  history.Add(kStart, Status(0));
  history.Add(kStart, Status(1));
  std::vector<StatusSample> fresh = history.SamplesAfter(0, &added);
  ASSERT_EQ(fresh.size(), 2u);
  EXPECT_EQ(added, 2);
  history.Add(kStart, Status(2));
  fresh = history.SamplesAfter(added, &added);
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0].status.stages(0).queued(), 2);
  // A reader that fell behind more than the ring holds gets what is kept.
  for (int i = 3; i < 10; ++i) history.Add(kStart, Status(i));
  fresh = history.SamplesAfter(3, &added);
  ASSERT_EQ(fresh.size(), 3u);
  EXPECT_EQ(fresh[0].status.stages(0).queued(), 7);
}

TEST(RedactSystemStatusTest, NonAdminsSeeHealthOnly) {
  conveyor::v1::SystemStatus seen = ChainApi::RedactSystemStatus(Status(5), kReader);
  ASSERT_EQ(seen.stages_size(), 1);
  EXPECT_EQ(seen.stages(0).health(), conveyor::v1::StageStatus::SERVING);
  EXPECT_EQ(seen.stages(0).queued(), 0);
  EXPECT_EQ(seen.stages(0).in_flight(), 0);
  EXPECT_EQ(seen.replicas_size(), 0);
  EXPECT_EQ(seen.blob_bytes(), 0);
  EXPECT_TRUE(seen.chains_by_state().empty());
  EXPECT_TRUE(seen.redis_reachable());
  EXPECT_EQ(ChainApi::RedactSystemStatus(Status(5), kAdmin).stages(0).queued(), 5);
}

TEST(StatusHistoryJsonTest, QueueDepthForAdminsHealthForOthers) {
  std::vector<StatusSample> samples = {{kStart, Status(4)}, {kStart + absl::Seconds(2), Status(6)}};
  google::protobuf::Struct admin;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(StatusHistoryJson(samples, kAdmin), &admin).ok());
  const auto& history = admin.fields().at("history").list_value();
  ASSERT_EQ(history.values_size(), 2);
  const auto& point = history.values(1).struct_value().fields();
  EXPECT_EQ(point.at("time").string_value(), "2026-01-01T00:00:02Z");
  const auto& resize = point.at("stages").struct_value().fields().at("resize").struct_value();
  EXPECT_EQ(resize.fields().at("queued").number_value(), 6);
  EXPECT_EQ(resize.fields().at("inFlight").number_value(), 2);
  EXPECT_EQ(point.at("replicas").number_value(), 1);
  EXPECT_TRUE(admin.fields().at("current").has_struct_value());

  const std::string reader = StatusHistoryJson(samples, kReader);
  EXPECT_THAT(reader, HasSubstr("\"health\":\"SERVING\""));
  EXPECT_THAT(reader, Not(HasSubstr("\"queued\":6")));
  EXPECT_THAT(reader, Not(HasSubstr("replica-1")));
  EXPECT_THAT(reader, Not(HasSubstr("RUNNING")));
}

TEST(StatusHistoryJsonTest, NoSampleYet) {
  EXPECT_THAT(StatusHistoryJson({}, kAdmin), HasSubstr("\"current\":null"));
}

}  // namespace
}  // namespace conveyor::orchestrator::dashboard
