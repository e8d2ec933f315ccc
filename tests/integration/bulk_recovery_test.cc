// Bulk recovery end to end: CancelChains / RetryChains and the ListChains
// stage and error-reason filters against a real redis-server, a real
// conveyor-orchestrator and real workers (conveyor-test-flaky-stage, failing
// while a file exists), all on 127.0.0.1. FAILED chains as a dead-letter
// queue: make some fail, replay exactly those, see them succeed.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/orchestrator_client.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/test_images.h"

// In conveyor::testing: the fixture's helpers (orchestrator_client.h) without
// a using-declaration each.
namespace conveyor::testing {
namespace {

using v1::Chain;

const std::string kBin = CONVEYOR_BIN_DIR;

// One attempt per step: a failure fails the chain at once.
v1::Step OneAttempt(v1::Step step) {
  step.mutable_retry()->set_max_attempts(1);
  step.mutable_timeout()->set_seconds(30);
  return step;
}
v1::Step Resize() {
  v1::Step s;
  s.mutable_resize()->set_width(32);
  return OneAttempt(s);
}
v1::Step Filter() {
  v1::Step s;
  s.mutable_filter()->add_ops()->mutable_grayscale();
  return OneAttempt(s);
}

// A flaky worker's call outcomes, by chain.
std::map<std::string, std::vector<std::string>> CallsByChain(const std::string& path) {
  std::map<std::string, std::vector<std::string>> out;
  for (const FlakyCall& call : ReadFlakyCalls(path)) out[call.chain].push_back(call.outcome);
  return out;
}

class BulkRecoveryTest : public ::testing::Test {
 protected:
  void TearDown() override { DumpLogs(logs_, HasFailure()); }

  struct Worker {
    std::unique_ptr<ServerProcess> process;
    std::string address;
    std::string calls_file;
  };

  Worker StartFlaky(std::vector<std::string> extra) {
    Worker w;
    w.calls_file = absl::StrCat(dir_.path(), "/calls-", logs_.size(), ".txt");
    std::vector<std::string> argv = {kBin + "/conveyor-test-flaky-stage", "--calls-file",
                                     w.calls_file};
    argv.insert(argv.end(), extra.begin(), extra.end());
    logs_.push_back(w.calls_file + ".log");
    w.process = std::make_unique<ServerProcess>(argv, logs_.back());
    w.address = w.process->address();
    EXPECT_TRUE(w.process->WaitUntilServing(absl::Seconds(10)).ok()) << w.process->started();
    return w;
  }

  void StartOrchestrator(const std::string& resize, const std::string& filter) {
    logs_.push_back(dir_.path() + "/orchestrator.log");
    orchestrator_ = std::make_unique<OrchestratorProcess>(
        redis_.url(), std::map<std::string, std::string>{{"resize", resize}, {"filter", filter}},
        std::vector<std::string>{"--lease-timeout", "2s"}, logs_.back());
    ASSERT_TRUE(orchestrator_->ready().ok()) << orchestrator_->ready();
    stub_ = &orchestrator_->stub();
  }

  std::string Submit(std::vector<v1::Step> steps, const std::string& group) {
    v1::SubmitChainRequest req;
    for (auto& s : steps) *req.mutable_spec()->add_steps() = s;
    (*req.mutable_spec()->mutable_labels())["group"] = group;
    req.mutable_source()->set_data(jpeg_);
    Chain chain;
    grpc::Status s = SubmitChain(*stub_, req, &chain);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return chain.name();
  }

  Chain Get(const std::string& name) { return GetChain(*stub_, name); }
  // Polls until the chain is in `state` (20 s at most).
  Chain WaitState(const std::string& name, v1::State state) {
    return WaitForState(*stub_, name, state);
  }
  std::set<std::string> ListNames(const v1::ListChainsRequest& req) {
    return ListChainNames(*stub_, req);
  }

  grpc::Status Retry(const v1::RetryChainsRequest& req, v1::BulkChainsResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub_->RetryChains(&ctx, req, resp);
  }
  grpc::Status Cancel(const v1::CancelChainsRequest& req, v1::BulkChainsResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub_->CancelChains(&ctx, req, resp);
  }

  RedisServer redis_;
  TempDir dir_;
  std::vector<std::string> logs_;
  std::string jpeg_ = NoiseJpeg(64, 48);
  std::unique_ptr<OrchestratorProcess> orchestrator_;
  v1::Orchestrator::Stub* stub_ = nullptr;
};

std::set<std::string> AsSet(const google::protobuf::RepeatedPtrField<std::string>& names) {
  return std::set<std::string>(names.begin(), names.end());
}

TEST_F(BulkRecoveryTest, RetryChainsByFilterReplaysExactlyTheFailedOnesAndTheySucceed) {
  const std::string fail_resize = dir_.path() + "/fail-resize";
  const std::string fail_filter = dir_.path() + "/fail-filter";
  Worker resize = StartFlaky({"--fail-while-exists", fail_resize, "--fail-code", "INTERNAL"});
  Worker filter = StartFlaky({"--fail-while-exists", fail_filter, "--fail-code", "DATA_LOSS"});
  StartOrchestrator(resize.address, filter.address);

  // One chain of group r succeeds before the outage.
  const std::string succeeded = Submit({Resize()}, "r");
  WaitState(succeeded, v1::SUCCEEDED);
  std::ofstream(fail_resize) << "x";
  std::ofstream(fail_filter) << "x";
  std::set<std::string> resize_failed, filter_failed;
  for (int i = 0; i < 4; ++i) resize_failed.insert(Submit({Resize()}, "r"));
  for (int i = 0; i < 3; ++i) filter_failed.insert(Submit({Filter()}, "f"));
  for (const auto& n : resize_failed) WaitState(n, v1::FAILED);
  for (const auto& n : filter_failed) WaitState(n, v1::FAILED);

  // The dead-letter queue, by stage and by reason.
  v1::ListChainsRequest list;
  list.set_state(v1::FAILED);
  list.set_stage(v1::STAGE_KIND_RESIZE);
  EXPECT_EQ(ListNames(list), resize_failed);
  list.set_stage(v1::STAGE_KIND_FILTER);
  EXPECT_EQ(ListNames(list), filter_failed);
  list.clear_stage();
  list.set_error_reason("internal");
  EXPECT_EQ(ListNames(list), resize_failed);
  list.set_error_reason("DATA_LOSS");
  EXPECT_EQ(ListNames(list), filter_failed);
  list.set_stage(v1::STAGE_KIND_RESIZE);
  EXPECT_TRUE(ListNames(list).empty());
  // The same, paged one chain at a time (a post-filtered scan resumes).
  v1::ListChainsRequest paged;
  paged.set_page_size(1);
  paged.set_stage(v1::STAGE_KIND_FILTER);
  EXPECT_EQ(ListNames(paged), filter_failed);

  // A dry run counts and names them, and changes nothing.
  v1::RetryChainsRequest req;
  req.mutable_filter()->set_state(v1::FAILED);
  req.mutable_filter()->set_stage(v1::STAGE_KIND_RESIZE);
  req.set_dry_run(true);
  v1::BulkChainsResponse dry;
  ASSERT_TRUE(Retry(req, &dry).ok());
  EXPECT_EQ(dry.matched_count(), 4);
  EXPECT_EQ(dry.changed_count(), 4);
  EXPECT_EQ(dry.skipped_count(), 0);
  EXPECT_EQ(AsSet(dry.changed_names()), resize_failed);
  for (const auto& n : resize_failed) {
    const Chain c = Get(n);
    EXPECT_EQ(c.state(), v1::FAILED);
    EXPECT_EQ(c.retries(), 0);
  }

  // The worker is back: retry group r. Its SUCCEEDED chain matches the
  // filter but cannot be retried: skipped, counted.
  std::filesystem::remove(fail_resize);
  v1::RetryChainsRequest by_label;
  (*by_label.mutable_filter()->mutable_labels())["group"] = "r";
  v1::BulkChainsResponse done;
  ASSERT_TRUE(Retry(by_label, &done).ok());
  EXPECT_EQ(done.matched_count(), 5);
  EXPECT_EQ(done.changed_count(), 4);
  EXPECT_EQ(done.skipped_count(), 1);
  EXPECT_EQ(done.failed_count(), 0);
  EXPECT_FALSE(done.truncated());
  EXPECT_EQ(AsSet(done.changed_names()), resize_failed);
  for (const auto& n : resize_failed) {
    const Chain c = WaitState(n, v1::SUCCEEDED);
    EXPECT_EQ(c.retries(), 1);
  }
  EXPECT_EQ(Get(succeeded).retries(), 0);
  // Exactly the retried chains ran again: one failed call and one good one.
  auto calls = CallsByChain(resize.calls_file);
  for (const auto& n : resize_failed) {
    EXPECT_EQ(calls[n], (std::vector<std::string>{"fail", "ok"})) << n;
  }
  EXPECT_EQ(calls[succeeded], std::vector<std::string>{"ok"});
  // The filter-stage chains were not touched.
  for (const auto& n : filter_failed) {
    const Chain c = Get(n);
    EXPECT_EQ(c.state(), v1::FAILED);
    EXPECT_EQ(c.retries(), 0);
  }

  // max_chains bounds a call, newest first, and says more may match.
  v1::RetryChainsRequest capped;
  capped.mutable_filter()->set_stage(v1::STAGE_KIND_FILTER);
  capped.set_max_chains(2);
  capped.set_dry_run(true);
  v1::BulkChainsResponse some;
  ASSERT_TRUE(Retry(capped, &some).ok());
  EXPECT_EQ(some.matched_count(), 2);
  EXPECT_EQ(some.changed_count(), 2);
  EXPECT_TRUE(some.truncated());
}

TEST_F(BulkRecoveryTest, CancelChainsStopsTheRunningOnesOfAFilterAndSkipsTheRest) {
  const std::string fail_filter = dir_.path() + "/fail-filter";
  std::ofstream(fail_filter) << "x";
  Worker slow = StartFlaky({"--delay", "30s"});
  Worker filter = StartFlaky({"--fail-while-exists", fail_filter, "--fail-code", "DATA_LOSS"});
  StartOrchestrator(slow.address, filter.address);
  std::set<std::string> slow_chains;
  for (int i = 0; i < 3; ++i) slow_chains.insert(Submit({Resize()}, "slow"));
  for (const auto& n : slow_chains) WaitState(n, v1::RUNNING);
  // A FAILED chain of the same group: cancelling it changes nothing.
  const std::string failed = Submit({Filter()}, "slow");
  WaitState(failed, v1::FAILED);

  v1::CancelChainsRequest req;
  (*req.mutable_filter()->mutable_labels())["group"] = "slow";
  req.set_dry_run(true);
  v1::BulkChainsResponse dry;
  ASSERT_TRUE(Cancel(req, &dry).ok());
  EXPECT_EQ(dry.matched_count(), 4);
  EXPECT_EQ(dry.changed_count(), 3);
  EXPECT_EQ(dry.skipped_count(), 1);
  for (const auto& n : slow_chains) EXPECT_EQ(Get(n).state(), v1::RUNNING);

  req.set_dry_run(false);
  v1::BulkChainsResponse done;
  ASSERT_TRUE(Cancel(req, &done).ok());
  EXPECT_EQ(done.changed_count(), 3);
  EXPECT_EQ(done.skipped_count(), 1);
  EXPECT_EQ(AsSet(done.changed_names()), slow_chains);
  for (const auto& n : slow_chains) WaitState(n, v1::CANCELLED);
  EXPECT_EQ(Get(failed).state(), v1::FAILED);
  // The worker calls were cancelled too (not left to run their 30 s).
  const absl::Time until = absl::Now() + absl::Seconds(10);
  size_t cancelled = 0;
  while (absl::Now() < until) {
    auto calls = CallsByChain(slow.calls_file);
    cancelled = std::count_if(slow_chains.begin(), slow_chains.end(), [&](const std::string& n) {
      return calls[n] == std::vector<std::string>{"cancelled"};
    });
    if (cancelled == slow_chains.size()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(cancelled, slow_chains.size());
  // Cancelled chains are a dead-letter queue too: by state and reason.
  v1::ListChainsRequest list;
  list.set_error_reason("CANCELLED");
  list.set_stage(v1::STAGE_KIND_RESIZE);
  EXPECT_EQ(ListNames(list), slow_chains);
}

TEST_F(BulkRecoveryTest, BadBulkRequestsAreInvalidArgumentNamingTheField) {
  Worker w = StartFlaky({});
  StartOrchestrator(w.address, w.address);
  v1::BulkChainsResponse resp;
  v1::RetryChainsRequest empty;
  grpc::Status s = Retry(empty, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("filter: empty", 0), 0u) << s.error_message();
  v1::CancelChainsRequest too_many;
  too_many.mutable_filter()->set_state(v1::RUNNING);
  too_many.set_max_chains(10001);
  s = Cancel(too_many, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "max_chains: want 0..10000 (0 = 10000), got 10001");
  v1::RetryChainsRequest bad_reason;
  bad_reason.mutable_filter()->set_error_reason("NOT A REASON");
  s = Retry(bad_reason, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("filter.error_reason: ", 0), 0u) << s.error_message();
  v1::ListChainsRequest bad_stage;
  bad_stage.set_stage(static_cast<v1::StageKind>(9));
  grpc::ClientContext ctx;
  v1::ListChainsResponse list;
  s = stub_->ListChains(&ctx, bad_stage, &list);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "stage: unknown stage kind 9");
}

}  // namespace
}  // namespace conveyor::testing
