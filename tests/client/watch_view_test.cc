#include "client/watch_view.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/proto_time.h"

namespace conveyor::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

v1::ChainEvent Event(v1::ChainEvent::Type type, int step, v1::State state, int progress,
                     absl::Time time) {
  v1::ChainEvent event;
  event.set_chain("chains/abc");
  event.set_type(type);
  event.set_step_index(step);
  event.set_attempt(step >= 0 ? 1 : 0);
  event.set_chain_state(state);
  event.set_progress_percent(progress);
  *event.mutable_time() = ToProtoTime(time);
  return event;
}

TEST(WatchViewTest, EventLineForPipes) {
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

  v1::ChainEvent cancelled = Event(v1::ChainEvent::CHAIN_CANCELLED, -1, v1::CANCELLED, 40, kNow);
  cancelled.mutable_actor()->set_principal("carol");
  cancelled.mutable_actor()->set_tenant("acme");
  EXPECT_THAT(FormatEventLine(cancelled, {}),
              HasSubstr("CHAIN_CANCELLED state=CANCELLED progress=40% by=carol@acme"));

  v1::ChainEvent failed = Event(v1::ChainEvent::CHAIN_FAILED, -1, v1::FAILED, 40, kNow);
  failed.mutable_error()->set_code(3);
  failed.mutable_error()->set_message("spec.width: want 0..16384, got -3");
  EXPECT_THAT(FormatEventLine(failed, {}),
              HasSubstr("CHAIN_FAILED state=FAILED progress=40% "
                        "error=\"INVALID_ARGUMENT: spec.width: want 0..16384, got -3\""));
}

TEST(WatchViewTest, WatchViewPipedPrintsOneLinePerEvent) {
  WatchView view({v1::STAGE_KIND_DOWNLOAD}, /*tty=*/false);
  const std::string out =
      view.OnEvent(Event(v1::ChainEvent::STEP_STARTED, 0, v1::RUNNING, 0, kNow));
  EXPECT_THAT(out, HasSubstr("STEP_STARTED step=0 download"));
  EXPECT_EQ(out.back(), '\n');
  EXPECT_THAT(out, Not(HasSubstr("\r")));
  EXPECT_EQ(view.Finish(), "");
  EXPECT_EQ(view.state(), v1::RUNNING);
}

TEST(WatchViewTest, WatchViewOnTerminalRedrawsBarAndPrintsStepLines) {
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
  *retry.mutable_next_attempt_time() = ToProtoTime(kNow + absl::Seconds(2));
  EXPECT_THAT(view.OnEvent(retry),
              StartsWith("\r\033[K  retry  step 2/2 resize  attempt 1 failed: UNAVAILABLE: "
                         "connection refused; next in 2s\n"));

  EXPECT_THAT(view.OnEvent(Event(v1::ChainEvent::CHAIN_SUCCEEDED, -1, v1::SUCCEEDED, 100, kNow)),
              HasSubstr("[##########] 100%  SUCCEEDED"));
  EXPECT_EQ(view.Finish(), "\r\033[K[##########] 100%  SUCCEEDED\n");
  EXPECT_EQ(view.state(), v1::SUCCEEDED);
}

TEST(WatchViewTest, WatchViewShowsAWaitAndHowLongItLasted) {
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
}  // namespace
}  // namespace conveyor::client
