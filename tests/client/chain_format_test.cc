#include "client/chain_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "client/format.h"
#include "common/proto_time.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/error_details.pb.h"

namespace conveyor::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

TEST(ChainFormatTest, GetShowsAWaitingStepWithItsReasonAndDuration) {
  v1::Chain chain;
  chain.set_name("chains/0123456789abcdef0123456789abcdef");
  chain.set_state(v1::RUNNING);
  chain.mutable_spec()->add_steps()->mutable_resize()->set_width(8);
  v1::StepStatus* step = chain.add_steps();
  step->set_kind(v1::STAGE_KIND_RESIZE);
  step->set_state(v1::PENDING);
  step->set_waiting_reason("UNAVAILABLE: failed to connect to all addresses");
  *step->mutable_waiting_since() = ToProtoTime(kNow - absl::Seconds(12));
  EXPECT_THAT(FormatChain(chain, kNow),
              HasSubstr("waiting for resize: UNAVAILABLE: failed to connect to all addresses "
                        "for 12.00s"));
}

v1::Chain SampleChain() {
  v1::Chain chain;
  chain.set_name("chains/0123456789abcdef0123456789abcdef");
  chain.set_state(v1::FAILED);
  chain.set_progress_percent(50);
  *chain.mutable_create_time() = ToProtoTime(kNow - absl::Minutes(3));
  *chain.mutable_update_time() = ToProtoTime(kNow - absl::Seconds(10));
  *chain.mutable_end_time() = ToProtoTime(kNow - absl::Seconds(10));
  chain.mutable_spec()->add_steps()->mutable_download()->set_url("http://127.0.0.1/a.jpg");
  chain.mutable_spec()->add_steps()->mutable_upload()->set_destination("file:///out");
  (*chain.mutable_spec()->mutable_labels())["team"] = "img";
  auto* s0 = chain.add_steps();
  s0->set_index(0);
  s0->set_kind(v1::STAGE_KIND_DOWNLOAD);
  s0->set_state(v1::SUCCEEDED);
  s0->set_attempts(1);
  s0->set_worker("ipv4:127.0.0.1:50061");
  *s0->mutable_duration() = ToProtoDuration(absl::Milliseconds(12));
  auto* img = s0->mutable_output()->mutable_image();
  img->set_width(4);
  img->set_height(3);
  img->set_media_type("image/jpeg");
  img->set_size_bytes(700);
  auto* s1 = chain.add_steps();
  s1->set_index(1);
  s1->set_kind(v1::STAGE_KIND_UPLOAD);
  s1->set_state(v1::FAILED);
  s1->set_attempts(3);
  s1->mutable_error()->set_code(7);
  s1->mutable_error()->set_message("file root not writable");
  chain.mutable_error()->set_code(7);
  chain.mutable_error()->set_message("step 1 upload: file root not writable");
  return chain;
}

TEST(ChainFormatTest, ChainDetail) {
  const std::string out = FormatChain(SampleChain(), kNow);
  EXPECT_THAT(out, HasSubstr("Chain:    chains/0123456789abcdef0123456789abcdef\n"));
  EXPECT_THAT(out, HasSubstr("State:    FAILED (50%)\n"));
  EXPECT_THAT(out, HasSubstr("Created:  3m ago\n"));
  EXPECT_THAT(out, HasSubstr("Ended:    10s ago (took 2m50s)\n"));
  EXPECT_THAT(out, HasSubstr("Labels:   team=img\n"));
  EXPECT_THAT(out, HasSubstr("Error:    PERMISSION_DENIED: step 1 upload: file root not writable"));
  EXPECT_THAT(out, HasSubstr("#  STAGE     STATE      ATTEMPTS  TIME  WORKER                "
                             "OUTPUT / ERROR\n"
                             "0  download  SUCCEEDED  1         12ms  ipv4:127.0.0.1:50061  "
                             "4x3 image/jpeg 700 B\n"
                             "1  upload    FAILED     3         -     -                     "
                             "PERMISSION_DENIED: file root not writable\n"));
}

TEST(ChainFormatTest, ChainDetailNamesTenantAndSubmitter) {
  v1::Chain chain = SampleChain();
  chain.set_tenant("acme");
  chain.set_principal("alice");
  EXPECT_THAT(FormatChain(chain, kNow), HasSubstr("Tenant:   acme (submitted by alice)\n"));
  EXPECT_THAT(FormatChain(SampleChain(), kNow), Not(HasSubstr("Tenant:")));
}

TEST(ChainFormatTest, ChainListTableAndNextPage) {
  v1::ListChainsResponse response;
  *response.add_chains() = SampleChain();
  response.set_next_page_token("tok123");
  EXPECT_EQ(FormatChainList(response, kNow),
            "CHAIN                             STATE   STEPS  STAGES           CREATED  TOOK   "
            "ERROR                      LABELS\n"
            "0123456789abcdef0123456789abcdef  FAILED  1/2    download>upload  3m ago   2m50s  "
            "upload: PERMISSION_DENIED  team=img\n"
            "More: --page-token tok123\n");
  EXPECT_EQ(FormatChainList(v1::ListChainsResponse(), kNow), "No chains.\n");
}

TEST(ChainFormatTest, SystemStatus) {
  v1::SystemStatus status;
  auto* stage = status.add_stages();
  stage->set_kind(v1::STAGE_KIND_RESIZE);
  stage->set_target("127.0.0.1:50062");
  stage->set_health(v1::StageStatus::NOT_SERVING);
  stage->set_health_detail("deadline exceeded");
  stage->set_queued(3);
  stage->set_in_flight(2);
  stage->set_max_in_flight(64);
  stage->set_succeeded(10);
  stage->set_failed(1);
  status.set_redis_reachable(true);
  *status.mutable_redis_latency() = ToProtoDuration(absl::Microseconds(250));
  auto* replica = status.add_replicas();
  replica->set_name("orch-1");
  replica->set_address("127.0.0.1:50051");
  *replica->mutable_heartbeat_time() = ToProtoTime(kNow - absl::Seconds(2));
  (*status.mutable_chains_by_state())["SUCCEEDED"] = 10;
  (*status.mutable_chains_by_state())["RUNNING"] = 2;
  const std::string out = FormatSystemStatus(status, kNow);
  // The reason goes below the table, which stays narrow.
  EXPECT_THAT(out, HasSubstr("resize  127.0.0.1:50062  NOT_SERVING  3       2/64       10         "
                             "1       0\n"));
  EXPECT_THAT(out, HasSubstr("\nNot serving:\n  resize: NOT_SERVING: deadline exceeded\n"));
  EXPECT_THAT(out, HasSubstr("Redis: reachable (PING 250us)\n"));
  EXPECT_THAT(out, HasSubstr("orch-1   127.0.0.1:50051  2s ago"));
  EXPECT_THAT(out, HasSubstr("Chains: RUNNING=2  SUCCEEDED=10\n"));
}

TEST(ChainFormatTest, SystemStatusNamesEveryHealthAndIsHealthyOnlyWhenAllServe) {
  v1::SystemStatus status;
  status.set_redis_reachable(true);
  const v1::StageStatus::Health healths[] = {v1::StageStatus::SERVING, v1::StageStatus::NOT_SERVING,
                                             v1::StageStatus::UNREACHABLE,
                                             v1::StageStatus::WRONG_SERVICE};
  for (v1::StageStatus::Health health : healths) {
    auto* stage = status.add_stages();
    stage->set_kind(v1::STAGE_KIND_FILTER);
    stage->set_target("127.0.0.1:1");
    stage->set_health(health);
    if (health != v1::StageStatus::SERVING) {
      stage->set_health_detail(absl::StrCat("why ", v1::StageStatus::Health_Name(health)));
    }
  }
  const std::string out = FormatSystemStatus(status, kNow);
  EXPECT_THAT(out, HasSubstr("filter  127.0.0.1:1  SERVING "));
  EXPECT_THAT(out, HasSubstr("\nNot serving:\n"
                             "  filter: NOT_SERVING: why NOT_SERVING\n"
                             "  filter: UNREACHABLE: why UNREACHABLE\n"
                             "  filter: WRONG_SERVICE: why WRONG_SERVICE\n"));
  EXPECT_FALSE(SystemHealthy(status));

  v1::SystemStatus healthy;
  healthy.set_redis_reachable(true);
  healthy.add_stages()->set_health(v1::StageStatus::SERVING);
  EXPECT_TRUE(SystemHealthy(healthy));
  EXPECT_THAT(FormatSystemStatus(healthy, kNow), Not(HasSubstr("Not serving")));
  healthy.set_redis_reachable(false);
  EXPECT_FALSE(SystemHealthy(healthy));
}

TEST(ChainFormatTest, PurgeDryRun) {
  v1::PurgeChainsResponse response;
  response.set_purged_count(3);
  response.add_purged_names("chains/a");
  EXPECT_EQ(FormatPurge(response, true),
            "Would purge 3 chains (dry run, nothing deleted)\n  chains/a\n  ... and 2 more\n");
  EXPECT_EQ(FormatPurge(v1::PurgeChainsResponse(), false), "Purged 0 chains\n");
}

TEST(ChainFormatTest, JsonIsParseableProtoJson) {
  const std::string json = ToJson(SampleChain(), /*pretty=*/false);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_THAT(json, HasSubstr("\"state\":\"FAILED\""));
  v1::Chain back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &back).ok());
  EXPECT_EQ(back.SerializeAsString(), SampleChain().SerializeAsString());
}

TEST(ChainFormatTest, ChainListErrorColumnIsWhatTheStageAndReasonFiltersMatch) {
  v1::ListChainsResponse response;
  v1::Chain* c = response.add_chains();
  *c = SampleChain();
  google::rpc::ErrorInfo info;
  info.set_reason("DESTINATION_BLOCKED");
  c->mutable_steps(1)->mutable_error()->add_details()->PackFrom(info);
  EXPECT_THAT(FormatChainList(response, kNow), HasSubstr("  upload: DESTINATION_BLOCKED  "));
  c->clear_error();
  EXPECT_THAT(FormatChainList(response, kNow), HasSubstr("  2m50s  -      team=img\n"));
}

TEST(ChainFormatTest, BulkResultCountsNamesAndFailures) {
  v1::BulkChainsResponse r;
  r.set_matched_count(5);
  r.set_changed_count(3);
  r.set_skipped_count(1);
  r.set_failed_count(1);
  r.add_changed_names("chains/a");
  r.add_changed_names("chains/b");
  auto* failure = r.add_failures();
  failure->set_name("chains/c");
  failure->mutable_error()->set_code(10);
  failure->mutable_error()->set_message("the chain kept changing; try again");
  EXPECT_EQ(FormatBulkResult(r, "retry", /*dry_run=*/true),
            "Would retry 3 chains of 5 matching; 1 skipped (not FAILED or CANCELLED, or changed "
            "meanwhile); 1 failed (dry run, nothing changed)\n"
            "  chains/a\n"
            "  chains/b\n"
            "  ... and 1 more\n"
            "failed: chains/c: ABORTED: the chain kept changing; try again\n");
  v1::BulkChainsResponse one;
  one.set_matched_count(1);
  one.set_changed_count(1);
  one.add_changed_names("chains/a");
  one.set_truncated(true);
  EXPECT_EQ(FormatBulkResult(one, "cancel", false),
            "Cancelled 1 chain of 1 matching\n  chains/a\n"
            "More chains may match: one call handles at most --max (10000 by default); run it "
            "again to go on.\n");
  EXPECT_EQ(FormatBulkResult(v1::BulkChainsResponse(), "retry", true),
            "No chains match the filter.\n");
}
}  // namespace
}  // namespace conveyor::client
