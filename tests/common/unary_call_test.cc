// The one log line format of every unary call (common/unary_call.h): what a
// stage call, an orchestrator call and an anonymous call say about
// themselves, and the answers the runner gives without running work.
#include "common/unary_call.h"

#include <gtest/gtest.h>

#include <string>

#include "common/status_details.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "conveyor/v1/stages.pb.h"

namespace conveyor {
namespace {

std::string LoggedLine(absl::string_view rpc, const CallSubject& subject,
                       const absl::Status& status, const CallScope& scope = {}) {
  ::testing::internal::CaptureStderr();
  LogCall(rpc, subject, status, absl::Milliseconds(12), 30, 40, scope);
  return ::testing::internal::GetCapturedStderr();
}

TEST(UnaryCallTest, StageRequestsNameChainStepAndAttempt) {
  v1::ResizeRequest request;
  request.mutable_context()->set_chain("chains/7f3");
  request.mutable_context()->set_step_index(2);
  request.mutable_context()->set_attempt(3);
  const CallSubject subject = SubjectOf(request);
  EXPECT_EQ(subject.chain, "chains/7f3");
  EXPECT_TRUE(subject.has_step);
  EXPECT_EQ(subject.step, 2);
  EXPECT_EQ(subject.attempt, 3);

  CallScope scope;
  scope.log_fields.emplace_back("out_dims", "20x10");
  const std::string line =
      LoggedLine("conveyor.v1.ResizeStage/Resize", subject, absl::OkStatus(), scope);
  EXPECT_NE(line.find(" level=info rpc=conveyor.v1.ResizeStage/Resize chain=chains/7f3 step=2 "
                      "attempt=3 code=OK ms=12.000 in_bytes=30 out_bytes=40 out_dims=20x10\n"),
            std::string::npos)
      << line;
}

TEST(UnaryCallTest, OrchestratorRequestsNameTheChainOnly) {
  v1::GetChainRequest get;
  get.set_name("chains/abc");
  const std::string line = LoggedLine("conveyor.v1.Orchestrator/GetChain", SubjectOf(get),
                                      absl::NotFoundError("no chain chains/abc"));
  EXPECT_NE(line.find(" level=warn rpc=conveyor.v1.Orchestrator/GetChain chain=chains/abc "
                      "code=NOT_FOUND ms=12.000 in_bytes=30 out_bytes=40 "),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find("step="), std::string::npos) << line;
  EXPECT_NE(line.find("error="), std::string::npos) << line;

  const CallSubject none = SubjectOf(v1::ListChainsRequest());
  EXPECT_TRUE(none.chain.empty());
  EXPECT_EQ(LoggedLine("conveyor.v1.Orchestrator/ListChains", none, absl::OkStatus())
                .find("chain="),
            std::string::npos);
}

TEST(UnaryCallTest, LongChainNamesAreCutInTheLine) {
  CallSubject subject{std::string(1000, 'c')};
  const std::string line = LoggedLine("x/Y", subject, absl::OkStatus());
  EXPECT_NE(line.find("chain=" + std::string(128, 'c') + " "), std::string::npos) << line;
  EXPECT_EQ(line.find(std::string(129, 'c')), std::string::npos);
}

TEST(UnaryCallTest, WorkerBusyIsResourceExhaustedWithTheBusyReason) {
  const absl::Status busy = WorkerBusyError();
  EXPECT_EQ(busy.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrorReason(busy), kReasonWorkerBusy);
}

TEST(UnaryCallTest, FillResponseMovesOnlyASuccess) {
  v1::Chain response;
  response.set_name("before");
  v1::Chain chain;
  chain.set_name("chains/1");
  EXPECT_TRUE(FillResponse(absl::StatusOr<v1::Chain>(chain), response).ok());
  EXPECT_EQ(response.name(), "chains/1");
  EXPECT_EQ(FillResponse(absl::StatusOr<v1::Chain>(absl::UnavailableError("down")), response)
                .code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(response.name(), "chains/1");
}

}  // namespace
}  // namespace conveyor
