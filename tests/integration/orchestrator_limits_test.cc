// Hostile input against the real conveyor-orchestrator binary and a real
// redis-server on 127.0.0.1: oversize fields, a bad after_event_id, large
// but legal chains listed through a default gRPC client, the blob cap and
// the freeing of failed chains' images (issue 10, items 3, 4, 8).
#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/error_details.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/test_images.h"

// In conveyor::testing: the fixture's helpers (orchestrator_process.h,
// error_details.h, test_images.h) without a using-declaration each.
namespace conveyor::testing {
namespace {

using v1::Chain;

class OrchestratorLimitsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!log_.empty()) DumpLogs({log_}, HasFailure());
  }

  // Every stage target points at a loopback port where nothing listens.
  void StartOrchestrator(std::vector<std::string> extra = {}) {
    log_ = dir_.path() + "/orchestrator.log";
    extra.insert(extra.begin(), {"--log-level", "info"});
    process_ = std::make_unique<OrchestratorProcess>(
        redis_.url(), std::map<std::string, std::string>{}, extra, log_);
    ASSERT_TRUE(process_->ready().ok()) << process_->ready();
    address_ = process_->address();
    // A default channel: 4 MiB receive limit, like `conveyor list`.
    stub_ = v1::Orchestrator::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }
  template <typename Call>
  grpc::Status Unary(Call call) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return call(&ctx);
  }
  grpc::Status Submit(const v1::SubmitChainRequest& req, Chain* out) {
    return Unary([&](grpc::ClientContext* ctx) { return stub_->SubmitChain(ctx, req, out); });
  }
  v1::SystemStatus Status() {
    v1::SystemStatus s;
    grpc::Status st = Unary([&](grpc::ClientContext* ctx) {
      return stub_->GetSystemStatus(ctx, v1::GetSystemStatusRequest(), &s);
    });
    EXPECT_TRUE(st.ok()) << st.error_message();
    return s;
  }
  // An inline-source chain of one resize that fails at once (nothing
  // listens at the resize target; one attempt of at most 1 s).
  v1::SubmitChainRequest FailingInline(size_t source_bytes) {
    v1::SubmitChainRequest req;
    v1::Step* step = req.mutable_spec()->add_steps();
    step->mutable_resize()->set_width(4);
    step->mutable_retry()->set_max_attempts(1);
    step->mutable_timeout()->set_seconds(1);
    req.mutable_source()->set_data(PaddedPng(source_bytes));
    return req;
  }

  TempDir dir_;
  RedisServer redis_;
  std::string address_;
  std::string log_;
  std::unique_ptr<OrchestratorProcess> process_;
  std::unique_ptr<v1::Orchestrator::Stub> stub_;
};

TEST_F(OrchestratorLimitsTest, OversizeFieldsAndBadIdsGetPreciseCodesWithoutEcho) {
  StartOrchestrator();
  v1::SubmitChainRequest big;
  big.mutable_spec()->add_steps()->mutable_download()->set_url("https://example.com/" +
                                                               std::string(8 << 20, 'a'));
  Chain chain;
  grpc::Status s = Submit(big, &chain);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(BadRequestField(s), "spec.steps[0].download.url");
  EXPECT_LT(s.error_message().size(), 120u);

  v1::SubmitChainRequest dest = FailingInline(100);
  dest.mutable_spec()->add_steps()->mutable_upload()->set_destination("file:///" +
                                                                      std::string(64 << 10, 'd'));
  s = Submit(dest, &chain);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(BadRequestField(s), "spec.steps[1].upload.destination");
  EXPECT_LT(s.error_details().size(), 1024u);  // the trailer stays small

  ASSERT_TRUE(Submit(FailingInline(100), &chain).ok());
  v1::WatchChainRequest watch;
  watch.set_name(chain.name());
  watch.set_after_event_id("not-an-id");
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto reader = stub_->WatchChain(&ctx, watch);
    v1::ChainEvent e;
    while (reader->Read(&e)) {
    }
    grpc::Status w = reader->Finish();
    EXPECT_EQ(w.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << w.error_message();
    EXPECT_EQ(BadRequestField(w), "after_event_id");
  }
  v1::GetChainRequest get;
  get.set_name("chains/" + std::string(1 << 20, 'f'));
  Chain got;
  s = Unary([&](grpc::ClientContext* ctx) { return stub_->GetChain(ctx, get, &got); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(s.error_message().size(), 120u);
}

// 40 chains of ~130 KiB (the largest legal specs) are 5 MiB: a default
// ListChains must still be deliverable to a client with the default 4 MiB
// receive limit, and the pages must cover every chain once.
TEST_F(OrchestratorLimitsTest, LargeLegalChainsListInPagesADefaultClientReceives) {
  StartOrchestrator();
  std::set<std::string> submitted;
  for (int i = 0; i < 40; ++i) {
    v1::SubmitChainRequest req = FailingInline(100);
    while (req.spec().steps_size() < 16) {
      req.mutable_spec()->add_steps()->mutable_webhook()->set_url(
          absl::StrCat("https://example.com/", i, "/", std::string(8000, 'w')));
    }
    Chain chain;
    grpc::Status s = Submit(req, &chain);
    ASSERT_TRUE(s.ok()) << s.error_message();
    submitted.insert(chain.name());
  }
  std::set<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    v1::ListChainsRequest req;  // default page_size (50)
    req.set_page_token(token);
    v1::ListChainsResponse page;
    grpc::Status s =
        Unary([&](grpc::ClientContext* ctx) { return stub_->ListChains(ctx, req, &page); });
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    EXPECT_LE(page.ByteSizeLong(), size_t{4} << 20);
    for (const Chain& c : page.chains()) EXPECT_TRUE(listed.insert(c.name()).second);
    token = page.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 20);
  EXPECT_EQ(listed, submitted);
  EXPECT_GE(pages, 2);
}

TEST_F(OrchestratorLimitsTest, BlobCapRefusesSubmitAndFailedChainsImagesAreFreed) {
  // No resize worker: with a 200 ms max outage the steps fail (UNAVAILABLE)
  // instead of waiting for one.
  StartOrchestrator(
      {"--max-blob-bytes", "2500", "--failed-blob-retention", "3s", "--max-outage", "200ms"});
  Chain a, b, c;
  ASSERT_TRUE(Submit(FailingInline(1000), &a).ok());
  ASSERT_TRUE(Submit(FailingInline(1000), &b).ok());
  grpc::Status full = Submit(FailingInline(1000), &c);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << full.error_message();
  EXPECT_EQ(ErrorInfoReason(full), "BLOB_STORE_FULL");
  v1::SystemStatus status = Status();
  EXPECT_EQ(status.blob_bytes(), 2000);
  EXPECT_EQ(status.max_blob_bytes(), 2500);
  EXPECT_GT(status.redis_used_memory_bytes(), 0);

  // Both chains fail within a second; 3 s after, the sweeper frees their images.
  const absl::Time until = absl::Now() + absl::Seconds(20);
  while (Status().blob_bytes() != 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Status().blob_bytes(), 0);
  v1::GetChainRequest get;
  get.set_name(a.name());
  Chain kept;
  ASSERT_TRUE(
      Unary([&](grpc::ClientContext* ctx) { return stub_->GetChain(ctx, get, &kept); }).ok());
  EXPECT_EQ(kept.state(), v1::FAILED);  // the record stays

  v1::RetryChainRequest retry;
  retry.set_name(a.name());
  Chain retried;
  grpc::Status r =
      Unary([&](grpc::ClientContext* ctx) { return stub_->RetryChain(ctx, retry, &retried); });
  EXPECT_EQ(r.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << r.error_message();
  EXPECT_EQ(ErrorInfoReason(r), "SOURCE_FREED");
  EXPECT_TRUE(Submit(FailingInline(1000), &c).ok());
}

}  // namespace
}  // namespace conveyor::testing
