// conveyor-orchestrator end to end (fixture: orchestrator_fixture.h):
// SIGKILL and restart, two replicas sharing work, SIGTERM draining, takeover
// of a killed replica's steps, heartbeats against the lease, Redis down at
// submit.
#include <signal.h>

#include <filesystem>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/integration/orchestrator_fixture.h"

namespace conveyor::testing {
namespace {

using v1::Chain;
using v1::ChainEvent;

TEST_F(OrchestratorTest, KillDashNineMidChainThenRestartCompletesWithoutRerunningSucceededSteps) {
  Worker resize = StartFlaky();
  Worker filter = StartFlaky({"--delay", "1500ms"});
  std::map<std::string, std::string> targets = {{"resize", resize.address},
                                                {"filter", filter.address}};
  Orchestrator first = StartOrchestrator(targets);
  Chain submitted;
  ASSERT_TRUE(
      SubmitChain(*first.stub, InlineRequest({Resize(), Filter(), Resize()}), &submitted).ok());
  WaitForChain(*first.stub, submitted.name(),
               [](const Chain& c) { return c.steps(1).state() == v1::RUNNING; });
  first.process->Signal(SIGKILL);
  first.process->Wait(absl::Seconds(5));
  Orchestrator second = StartOrchestrator(targets, {}, first.port());
  Chain done = WaitForTerminal(*second.stub, submitted.name(), absl::Seconds(20));
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.ShortDebugString();
  auto resize_calls = Calls(resize.calls_file);
  // Step 0 had succeeded before the crash: never run again.
  EXPECT_EQ(Of(resize_calls, done.name(), 0), std::vector<std::string>{"ok"});
  EXPECT_EQ(Of(resize_calls, done.name(), 2), std::vector<std::string>{"ok"});
  // Step 1 was in flight: at-least-once, it ran again as a new attempt.
  EXPECT_GE(Of(Calls(filter.calls_file), done.name(), 1).size(), 1u);
  EXPECT_EQ(done.steps(0).attempts(), 1);
  EXPECT_EQ(done.steps(1).attempts(), 2);
}

TEST_F(OrchestratorTest, TwoReplicasShareTheWorkAndEveryChainCompletesOnce) {
  Worker flaky = StartFlaky({"--delay", "20ms"});
  std::map<std::string, std::string> targets = {{"resize", flaky.address}};
  Orchestrator a = StartOrchestrator(targets, {"--replica-name", "replica-a"});
  Orchestrator b = StartOrchestrator(targets, {"--replica-name", "replica-b"});
  std::vector<std::string> names;
  for (int i = 0; i < 30; ++i) {
    Chain c;
    ASSERT_TRUE(
        SubmitChain(i % 2 ? *a.stub : *b.stub, InlineRequest({Resize(), Resize()}), &c).ok());
    names.push_back(c.name());
  }
  for (const auto& n : names) {
    Chain done = WaitForTerminal(*a.stub, n);
    EXPECT_EQ(done.state(), v1::SUCCEEDED);
  }
  auto calls = Calls(flaky.calls_file);
  for (const auto& n : names) {
    EXPECT_EQ(Of(calls, n, 0).size(), 1u) << n;
    EXPECT_EQ(Of(calls, n, 1).size(), 1u) << n;
  }
  // Both replicas dispatched some of the steps.
  auto attempts_in = [](const std::string& log) {
    std::string text = ReadFile(log);
    int n = 0;
    for (size_t pos = text.find("step attempt"); pos != std::string::npos;
         pos = text.find("step attempt", pos + 1)) {
      ++n;
    }
    return n;
  };
  const int from_a = attempts_in(a.log), from_b = attempts_in(b.log);
  EXPECT_EQ(from_a + from_b, 60);
  EXPECT_GT(from_a, 0);
  EXPECT_GT(from_b, 0);
  // Status sees both replicas.
  grpc::ClientContext ctx;
  v1::SystemStatus status;
  ASSERT_TRUE(a.stub->GetSystemStatus(&ctx, v1::GetSystemStatusRequest(), &status).ok());
  EXPECT_TRUE(status.redis_reachable());
  EXPECT_EQ(status.replicas_size(), 2);
  ASSERT_EQ(status.stages_size(), 5);
  EXPECT_EQ(status.stages(1).kind(), v1::STAGE_KIND_RESIZE);
  EXPECT_EQ(status.stages(1).health(), v1::StageStatus::SERVING);
  EXPECT_EQ(status.stages(1).succeeded(), 60);
  EXPECT_EQ(status.stages(1).queued(), 0);
  EXPECT_EQ(status.stages(0).health(), v1::StageStatus::UNREACHABLE);
  EXPECT_EQ(status.chains_by_state().at("SUCCEEDED"), 30);
}

TEST_F(OrchestratorTest, SigtermLetsTheInFlightStepFinishAndExitsZero) {
  Worker slow = StartFlaky({"--delay", "300ms"});
  std::map<std::string, std::string> targets = {{"resize", slow.address}};
  // The dispatcher drains for half the grace: 2 s, far more than the step.
  Orchestrator first = StartOrchestrator(targets, {"--shutdown-grace", "4s"});
  Chain submitted;
  ASSERT_TRUE(SubmitChain(*first.stub, InlineRequest({Resize(), Resize()}), &submitted).ok());
  WaitForChain(*first.stub, submitted.name(),
               [](const Chain& c) { return c.steps(0).state() == v1::RUNNING; });
  first.process->Signal(SIGTERM);
  EXPECT_EQ(first.process->Wait(absl::Seconds(10)), 0);
  Orchestrator second = StartOrchestrator(targets, {}, first.port());
  Chain done = WaitForTerminal(*second.stub, submitted.name());
  EXPECT_EQ(done.state(), v1::SUCCEEDED);
  // Step 0 finished during the drain and was recorded: it ran once.
  EXPECT_EQ(done.steps(0).attempts(), 1);
  EXPECT_EQ(Of(Calls(slow.calls_file), done.name(), 0), std::vector<std::string>{"ok"});
}

TEST_F(OrchestratorTest, SurvivingReplicaTakesOverEveryStepOfAKilledOne) {
  Worker slow = StartFlaky({"--delay", "300ms"});
  std::map<std::string, std::string> targets = {{"resize", slow.address}};
  Orchestrator a = StartOrchestrator(targets, {"--replica-name", "doomed"});
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) {
    Chain c;
    ASSERT_TRUE(SubmitChain(*a.stub, InlineRequest({Resize(), Resize()}), &c).ok());
    names.push_back(c.name());
  }
  // Kill it while it has steps in flight; only then start the survivor.
  WaitForChain(*a.stub, names.back(),
               [](const Chain& c) { return c.steps(0).state() == v1::RUNNING; });
  a.process->Signal(SIGKILL);
  a.process->Wait(absl::Seconds(5));
  Orchestrator b = StartOrchestrator(targets, {"--replica-name", "survivor"});
  const auto calls_for = [&](const std::string& n, int step) {
    return static_cast<int>(Of(Calls(slow.calls_file), n, step).size());
  };
  int rerun_steps = 0;
  for (const auto& n : names) {
    Chain done = WaitForTerminal(*b.stub, n, absl::Seconds(30));
    ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.ShortDebugString();
    for (int step = 0; step < 2; ++step) {
      // Every worker call was a counted attempt: nothing ran behind the
      // state machine's back, and a recorded success was never run again.
      EXPECT_EQ(calls_for(n, step), done.steps(step).attempts()) << n << " step " << step;
      rerun_steps += done.steps(step).attempts() > 1;
    }
  }
  EXPECT_GT(rerun_steps, 0);  // the killed replica's in-flight steps ran again
}

TEST_F(OrchestratorTest, HeartbeatsKeepStepsLongerThanTheLeaseFromBeingTakenOver) {
  // Steps take 2.5 x the 1 s lease; the other replica must not reclaim them.
  Worker slow = StartFlaky({"--delay", "2500ms"});
  std::map<std::string, std::string> targets = {{"resize", slow.address}};
  Orchestrator a = StartOrchestrator(targets, {"--replica-name", "hb-a"});
  Orchestrator b = StartOrchestrator(targets, {"--replica-name", "hb-b"});
  std::vector<std::string> names;
  for (int i = 0; i < 4; ++i) {
    Chain c;
    ASSERT_TRUE(SubmitChain(i % 2 ? *a.stub : *b.stub, InlineRequest({Resize()}), &c).ok());
    names.push_back(c.name());
  }
  for (const auto& n : names) {
    Chain done = WaitForTerminal(*a.stub, n);
    EXPECT_EQ(done.state(), v1::SUCCEEDED);
    EXPECT_EQ(done.steps(0).attempts(), 1);
    EXPECT_EQ(Of(Calls(slow.calls_file), n, 0), std::vector<std::string>{"ok"});
  }
}

TEST_F(OrchestratorTest, RedisUnavailableAtSubmitIsUnavailableAndHealthNotServing) {
  Orchestrator o = StartOrchestrator({});
  redis_.Kill();
  Chain chain;
  grpc::Status s = SubmitChain(*o.stub, InlineRequest({Resize()}), &chain);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(o.address, grpc::InsecureChannelCredentials()));
  const absl::Time until = absl::Now() + absl::Seconds(5);
  grpc::health::v1::HealthCheckResponse::ServingStatus serving =
      grpc::health::v1::HealthCheckResponse::SERVING;
  while (absl::Now() < until && serving == grpc::health::v1::HealthCheckResponse::SERVING) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckResponse resp;
    if (health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok()) {
      serving = resp.status();
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(serving, grpc::health::v1::HealthCheckResponse::NOT_SERVING);
}

}  // namespace
}  // namespace conveyor::testing
