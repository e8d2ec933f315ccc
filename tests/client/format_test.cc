#include "client/format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/chain_builder.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/error_details.pb.h"

namespace conveyor::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

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

v1::ChainEvent Event(v1::ChainEvent::Type type, int step, v1::State state, int progress,
                     absl::Time time) {
  v1::ChainEvent event;
  event.set_chain("chains/abc");
  event.set_type(type);
  event.set_step_index(step);
  event.set_attempt(step >= 0 ? 1 : 0);
  event.set_chain_state(state);
  event.set_progress_percent(progress);
  *event.mutable_time() = ToProtoTimestamp(time);
  return event;
}

TEST(FormatTest, EventLineForPipes) {
  v1::ChainEvent event = Event(v1::ChainEvent::STEP_SUCCEEDED, 1, v1::RUNNING, 40,
                               absl::FromUnixMillis(1'800'000'000'123));
  event.set_worker("ipv4:127.0.0.1:50062");
  auto* image = event.mutable_output()->mutable_image();
  image->set_width(800);
  image->set_height(533);
  image->set_media_type("image/jpeg");
  image->set_size_bytes(80'281);
  EXPECT_EQ(FormatEventLine(event, {v1::STAGE_KIND_DOWNLOAD, v1::STAGE_KIND_RESIZE}),
            "2027-01-15T08:00:00.123Z STEP_SUCCEEDED step=1 resize attempt=1 state=RUNNING "
            "progress=40% worker=ipv4:127.0.0.1:50062 output=\"800x533 image/jpeg 78.4 KiB\"");

  v1::ChainEvent failed = Event(v1::ChainEvent::CHAIN_FAILED, -1, v1::FAILED, 40, kNow);
  failed.mutable_error()->set_code(3);
  failed.mutable_error()->set_message("spec.width: want 0..16384, got -3");
  EXPECT_THAT(FormatEventLine(failed, {}),
              HasSubstr("CHAIN_FAILED state=FAILED progress=40% "
                        "error=\"INVALID_ARGUMENT: spec.width: want 0..16384, got -3\""));
}

TEST(FormatTest, WatchViewPipedPrintsOneLinePerEvent) {
  WatchView view({v1::STAGE_KIND_DOWNLOAD}, /*tty=*/false);
  const std::string out =
      view.OnEvent(Event(v1::ChainEvent::STEP_STARTED, 0, v1::RUNNING, 0, kNow));
  EXPECT_THAT(out, HasSubstr("STEP_STARTED step=0 download"));
  EXPECT_EQ(out.back(), '\n');
  EXPECT_THAT(out, Not(HasSubstr("\r")));
  EXPECT_EQ(view.Finish(), "");
  EXPECT_EQ(view.state(), v1::RUNNING);
}

TEST(FormatTest, WatchViewOnTerminalRedrawsBarAndPrintsStepLines) {
  WatchView view({v1::STAGE_KIND_DOWNLOAD, v1::STAGE_KIND_RESIZE}, /*tty=*/true, 10);
  std::string first = view.OnEvent(Event(v1::ChainEvent::STEP_STARTED, 0, v1::RUNNING, 0, kNow));
  EXPECT_EQ(first, "[..........]   0%  RUNNING  step 1/2 download");

  v1::ChainEvent done =
      Event(v1::ChainEvent::STEP_SUCCEEDED, 0, v1::RUNNING, 50, kNow + absl::Milliseconds(184));
  done.mutable_output()->mutable_image()->set_width(10);
  done.mutable_output()->mutable_image()->set_height(20);
  done.mutable_output()->mutable_image()->set_media_type("image/png");
  done.mutable_output()->mutable_image()->set_size_bytes(100);
  EXPECT_EQ(view.OnEvent(done),
            "\r\033[K  ok     step 1/2 download  10x20 image/png 100 B  184ms\n"
            "[#####.....]  50%  RUNNING  step 1/2 download");

  v1::ChainEvent retry = Event(v1::ChainEvent::STEP_RETRYING, 1, v1::RETRYING, 50, kNow);
  retry.mutable_error()->set_code(14);
  retry.mutable_error()->set_message("connection refused");
  *retry.mutable_next_attempt_time() = ToProtoTimestamp(kNow + absl::Seconds(2));
  EXPECT_THAT(view.OnEvent(retry),
              StartsWith("\r\033[K  retry  step 2/2 resize  attempt 1 failed: UNAVAILABLE: "
                         "connection refused; next in 2s\n"));

  EXPECT_THAT(view.OnEvent(Event(v1::ChainEvent::CHAIN_SUCCEEDED, -1, v1::SUCCEEDED, 100, kNow)),
              HasSubstr("[##########] 100%  SUCCEEDED"));
  EXPECT_EQ(view.Finish(), "\r\033[K[##########] 100%  SUCCEEDED\n");
  EXPECT_EQ(view.state(), v1::SUCCEEDED);
}

TEST(FormatTest, WatchViewShowsAWaitAndHowLongItLasted) {
  WatchView view({v1::STAGE_KIND_DOWNLOAD, v1::STAGE_KIND_RESIZE}, /*tty=*/true, 10);
  v1::ChainEvent wait = Event(v1::ChainEvent::STEP_WAITING, 1, v1::RUNNING, 50, kNow);
  wait.mutable_error()->set_code(14);
  wait.mutable_error()->set_message("failed to connect to all addresses");
  EXPECT_EQ(view.OnEvent(wait),
            "  wait   step 2/2 resize  waiting for resize: UNAVAILABLE: failed to connect to all "
            "addresses\n"
            "[#####.....]  50%  RUNNING  step 2/2 resize  waiting: UNAVAILABLE: failed to "
            "connect to all addresses");
  EXPECT_THAT(view.OnEvent(Event(v1::ChainEvent::STEP_STARTED, 1, v1::RUNNING, 50,
                                 kNow + absl::Seconds(12))),
              StartsWith("\r\033[K  resume step 2/2 resize  after waiting 12.00s for resize\n"));
}

TEST(FormatTest, GetShowsAWaitingStepWithItsReasonAndDuration) {
  v1::Chain chain;
  chain.set_name("chains/0123456789abcdef0123456789abcdef");
  chain.set_state(v1::RUNNING);
  chain.mutable_spec()->add_steps()->mutable_resize()->set_width(8);
  v1::StepStatus* step = chain.add_steps();
  step->set_kind(v1::STAGE_KIND_RESIZE);
  step->set_state(v1::PENDING);
  step->set_waiting_reason("UNAVAILABLE: failed to connect to all addresses");
  *step->mutable_waiting_since() = ToProtoTimestamp(kNow - absl::Seconds(12));
  EXPECT_THAT(FormatChain(chain, kNow),
              HasSubstr("waiting for resize: UNAVAILABLE: failed to connect to all addresses "
                        "for 12.00s"));
}

v1::Chain SampleChain() {
  v1::Chain chain;
  chain.set_name("chains/0123456789abcdef0123456789abcdef");
  chain.set_state(v1::FAILED);
  chain.set_progress_percent(50);
  *chain.mutable_create_time() = ToProtoTimestamp(kNow - absl::Minutes(3));
  *chain.mutable_update_time() = ToProtoTimestamp(kNow - absl::Seconds(10));
  *chain.mutable_end_time() = ToProtoTimestamp(kNow - absl::Seconds(10));
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

TEST(FormatTest, ChainDetail) {
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

TEST(FormatTest, ChainListTableAndNextPage) {
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

TEST(FormatTest, SystemStatus) {
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
  *replica->mutable_heartbeat_time() = ToProtoTimestamp(kNow - absl::Seconds(2));
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

TEST(FormatTest, SystemStatusNamesEveryHealthAndIsHealthyOnlyWhenAllServe) {
  v1::SystemStatus status;
  status.set_redis_reachable(true);
  const v1::StageStatus::Health healths[] = {v1::StageStatus::SERVING,
                                             v1::StageStatus::NOT_SERVING,
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

TEST(FormatTest, PurgeDryRun) {
  v1::PurgeChainsResponse response;
  response.set_purged_count(3);
  response.add_purged_names("chains/a");
  EXPECT_EQ(FormatPurge(response, true),
            "Would purge 3 chains (dry run, nothing deleted)\n  chains/a\n  ... and 2 more\n");
  EXPECT_EQ(FormatPurge(v1::PurgeChainsResponse(), false), "Purged 0 chains\n");
}

TEST(FormatTest, JsonIsParseableProtoJson) {
  const std::string json = ToJson(SampleChain(), /*pretty=*/false);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_THAT(json, HasSubstr("\"state\":\"FAILED\""));
  v1::Chain back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &back).ok());
  EXPECT_EQ(back.SerializeAsString(), SampleChain().SerializeAsString());
}

TEST(FormatTest, BatchSummaryListsFailuresWithReasons) {
  std::vector<BatchItemResult> items(3);
  items[0] = {"http://127.0.0.1/a.jpg", "chains/a", true, "", absl::Milliseconds(300)};
  items[1] = {"http://127.0.0.1/b.jpg", "chains/b", false, "NOT_FOUND: HTTP 404",
              absl::Milliseconds(50)};
  items[2] = {"/nope.jpg", "", false, "cannot read /nope.jpg", absl::ZeroDuration()};
  EXPECT_EQ(FormatBatchSummary(items, absl::Seconds(2)),
            "\n3 chains: 1 succeeded, 2 failed in 2.00s (1.50 chains/s)\n"
            "Failed:\n"
            "  http://127.0.0.1/b.jpg: NOT_FOUND: HTTP 404\n"
            "  /nope.jpg: cannot read /nope.jpg\n");
  EXPECT_EQ(FormatBatchItem(items[0]), "ok    http://127.0.0.1/a.jpg  chains/a  300ms");
  EXPECT_EQ(FormatBatchItem(items[1]),
            "FAIL  http://127.0.0.1/b.jpg  chains/b  NOT_FOUND: HTTP 404");
  EXPECT_EQ(FormatBatchProgress(2, 4, 1, 1, 2, 4), "[##..]  50%  2/4  ok 1  failed 1  running 2");
}

TEST(FormatTest, ChainListErrorColumnIsWhatTheStageAndReasonFiltersMatch) {
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

TEST(FormatTest, BulkResultCountsNamesAndFailures) {
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
