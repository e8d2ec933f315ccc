// What each dashboard URL does, over the in-memory store and a real
// Authenticator with a tokens file: auth -> HTTP status, tenants, CSRF on
// actions, the login cookie, step images while they are kept, and both
// live streams' frames.
#include "orchestrator/dashboard/dashboard_endpoints.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/orchestrator/auth/tokens_fixture.h"
#include "tests/orchestrator/chain_api_fixture.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::orchestrator::dashboard {
namespace {

using ::conveyor::testing::TokensFileLine;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kUser = "user-token-0a1b2c3d4e5f60718293a4b5c6d7e8f9";      // default, all chains
const std::string kReader = "reader-token-7c1e5a9b3d2f4e6a8b0c1d2e3f4a5b6c";  // default, read
const std::string kOther = "other-token-9f8e7d6c5b4a39281706f5e4d3c2b1a0";    // tenant-b

HttpRequest As(const std::string& token) {
  HttpRequest request;
  if (!token.empty()) request.credentials.authorization = {"Bearer " + token};
  request.host = "127.0.0.1:8080";
  return request;
}
HttpRequest Post(const std::string& token) {
  HttpRequest request = As(token);
  request.csrf_header = "1";
  request.origin = "http://127.0.0.1:8080";
  return request;
}

std::string HeaderOf(const HttpReply& reply, const std::string& name) {
  for (const auto& [k, v] : reply.headers) {
    if (k == name) return v;
  }
  return "";
}

class DashboardEndpointsTest : public ChainApiFixture {
 protected:
  DashboardEndpointsTest() : ChainApiFixture(conveyor::orchestrator::testing::Backend::kMemory) {}
  void SetUp() override {
    ChainApiFixture::SetUp();
    authenticator_ = conveyor::testing::WriteTokensFileAuthenticator(
        tokens_,
        absl::StrCat(TokensFileLine(kUser, "user default chains.submit,chains.read,chains.cancel"),
                     TokensFileLine(kReader, "reader default chains.read"),
                     TokensFileLine(kOther, "other tenant-b chains.read,chains.cancel")),
        clock_);
    ASSERT_NE(authenticator_, nullptr);
    DashboardEndpointOptions endpoint_options;
    endpoint_options.list_refresh = absl::Milliseconds(1);
    endpoints_ = std::make_unique<DashboardEndpoints>(*api_, store(), *authenticator_, history_,
                                                      clock_, endpoint_options);
  }
  std::string Id(const conveyor::v1::Chain& chain) { return ChainIdFromName(chain.name()); }

  conveyor::testing::TempDir dir_;
  const std::string tokens_ = dir_.path() + "/tokens";
  std::unique_ptr<auth::Authenticator> authenticator_;
  StatusHistory history_{10};
  std::unique_ptr<DashboardEndpoints> endpoints_;
};

TEST_F(DashboardEndpointsTest, ListNeedsACallerAndShowsOnlyItsTenant) {
  const conveyor::v1::Chain chain = Submit(DownloadRequest());
  HttpReply none = endpoints_->ListChains(As(""));
  EXPECT_EQ(none.status, 401);
  EXPECT_THAT(none.body, HasSubstr("UNAUTHENTICATED"));
  EXPECT_EQ(HeaderOf(none, "WWW-Authenticate"), "Bearer realm=\"conveyor\"");
  EXPECT_EQ(endpoints_->ListChains(As("wrong-token")).status, 401);

  HttpReply mine = endpoints_->ListChains(As(kReader));
  EXPECT_EQ(mine.status, 200);
  EXPECT_EQ(mine.content_type, "application/json");
  EXPECT_THAT(mine.body, HasSubstr(chain.name()));
  HttpReply theirs = endpoints_->ListChains(As(kOther));
  EXPECT_EQ(theirs.status, 200);
  EXPECT_THAT(theirs.body, Not(HasSubstr(chain.name())));
}

TEST_F(DashboardEndpointsTest, ListFiltersAndBadFilterIs400) {
  conveyor::v1::SubmitChainRequest labelled = DownloadRequest();
  (*labelled.mutable_spec()->mutable_labels())["team"] = "vision";
  const conveyor::v1::Chain a = Submit(labelled);
  const conveyor::v1::Chain b = Submit(DownloadRequest());
  HttpRequest request = As(kReader);
  request.query = {{"label", "team=vision"}, {"state", "pending"}};
  HttpReply reply = endpoints_->ListChains(request);
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_THAT(reply.body, HasSubstr(a.name()));
  EXPECT_THAT(reply.body, Not(HasSubstr(b.name())));
  request.query = {{"state", "DONE"}};
  reply = endpoints_->ListChains(request);
  EXPECT_EQ(reply.status, 400);
  EXPECT_THAT(reply.body, HasSubstr("INVALID_ARGUMENT"));
}

TEST_F(DashboardEndpointsTest, AnotherTenantsChainIsNotFound) {
  const conveyor::v1::Chain chain = Submit(DownloadRequest());
  EXPECT_EQ(endpoints_->GetChain(As(kReader), Id(chain)).status, 200);
  HttpReply theirs = endpoints_->GetChain(As(kOther), Id(chain));
  HttpReply unknown = endpoints_->GetChain(As(kOther), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(theirs.status, 404);
  EXPECT_EQ(unknown.status, 404);
  // Word for word as an unknown chain: nothing tells that it exists.
  EXPECT_EQ(theirs.body,
            absl::StrReplaceAll(unknown.body, {{"0123456789abcdef0123456789abcdef", Id(chain)}}));
  EXPECT_EQ(endpoints_->GetChain(As(kReader), "not-a-chain").status, 400);
}

TEST_F(DashboardEndpointsTest, CancelNeedsTheScopeAndTheCsrfHeader) {
  const conveyor::v1::Chain chain = Submit(DownloadRequest());
  HttpRequest no_csrf = As(kUser);
  EXPECT_EQ(endpoints_->CancelChain(no_csrf, Id(chain)).status, 403);
  HttpRequest cross_site = Post(kUser);
  cross_site.origin = "https://evil.example";
  EXPECT_EQ(endpoints_->CancelChain(cross_site, Id(chain)).status, 403);
  HttpReply reader = endpoints_->CancelChain(Post(kReader), Id(chain));
  EXPECT_EQ(reader.status, 403);
  EXPECT_THAT(reader.body, HasSubstr("chains.cancel"));
  EXPECT_EQ(endpoints_->CancelChain(Post(kOther), Id(chain)).status, 404);
  EXPECT_EQ(endpoints_->GetChain(As(kReader), Id(chain)).body.find("CANCELLED"), std::string::npos);

  HttpReply cancelled = endpoints_->CancelChain(Post(kUser), Id(chain));
  EXPECT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_THAT(cancelled.body, HasSubstr("\"state\":\"CANCELLED\""));
  HttpReply retried = endpoints_->RetryChain(Post(kUser), Id(chain));
  EXPECT_EQ(retried.status, 200) << retried.body;
  EXPECT_THAT(retried.body, HasSubstr("\"retries\":1"));
  // Retrying a chain that runs again is a precondition failure: 409.
  EXPECT_EQ(endpoints_->RetryChain(Post(kUser), Id(chain)).status, 409);
}

TEST_F(DashboardEndpointsTest, LoginSetsAnHttpOnlyCookieForAGoodToken) {
  HttpRequest login = Post("");
  login.body = absl::StrCat("{\"token\": \"", kReader, "\"}");
  HttpReply ok = endpoints_->Login(login);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_THAT(ok.body, HasSubstr("\"principal\":\"reader\""));
  EXPECT_EQ(HeaderOf(ok, "Set-Cookie"),
            absl::StrCat("conveyor_session=", kReader, "; Path=/; HttpOnly; SameSite=Strict"));

  // The cookie then works as the header does.
  HttpRequest with_cookie = As("");
  with_cookie.credentials.cookie = absl::StrCat("conveyor_session=", kReader);
  EXPECT_EQ(endpoints_->WhoAmI(with_cookie).status, 200);

  login.body = "{\"token\": \"wrong-token\"}";
  HttpReply bad = endpoints_->Login(login);
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(HeaderOf(bad, "Set-Cookie"), "");
  EXPECT_THAT(bad.body, Not(HasSubstr("wrong-token")));
  HttpRequest forged = As("");
  forged.body = login.body;
  EXPECT_EQ(endpoints_->Login(forged).status, 403);  // no CSRF header
  HttpReply logout = endpoints_->Logout(Post(""));
  EXPECT_THAT(HeaderOf(logout, "Set-Cookie"), HasSubstr("Max-Age=0"));
}

TEST_F(DashboardEndpointsTest, StepImageWhileTheStoreKeepsIt) {
  const conveyor::v1::Chain chain = Submit(InlineRequest());
  const std::string png = conveyor::testing::PaddedPng(300);
  RunStep(chain, 0, true, png);
  HttpReply image = endpoints_->StepImage(As(kReader), Id(chain), "0");
  EXPECT_EQ(image.status, 200) << image.body;
  EXPECT_EQ(image.content_type, "image/png");
  EXPECT_EQ(image.body, png);
  EXPECT_EQ(endpoints_->StepImage(As(kOther), Id(chain), "0").status, 404);
  EXPECT_EQ(endpoints_->StepImage(As(""), Id(chain), "0").status, 401);
  EXPECT_EQ(endpoints_->StepImage(As(kReader), Id(chain), "1").status, 404);  // not run yet
  EXPECT_EQ(endpoints_->StepImage(As(kReader), Id(chain), "x").status, 400);
  EXPECT_EQ(endpoints_->StepImage(As(kReader), Id(chain), "16").status, 400);

  RunStep(chain, 1, true, png);
  RunStep(chain, 2, true);  // the upload: the chain SUCCEEDED, its images deleted
  HttpReply gone = endpoints_->StepImage(As(kReader), Id(chain), "0");
  EXPECT_EQ(gone.status, 404);
  EXPECT_THAT(gone.body, HasSubstr("no longer kept"));
}

TEST_F(DashboardEndpointsTest, ChainStreamSendsHistoryThenEnd) {
  const conveyor::v1::Chain chain = Submit(InlineRequest());
  for (int step = 0; step < 3; ++step) {
    RunStep(chain, step, true, conveyor::testing::PaddedPng(100));
  }
  absl::StatusOr<Caller> caller = endpoints_->ChainStreamCaller(As(kReader), Id(chain));
  ASSERT_TRUE(caller.ok()) << caller.status();
  std::vector<std::string> frames;
  absl::Status status = endpoints_->StreamChain(
      *caller, Id(chain), "",
      [&](const std::string& frame) {
        frames.push_back(frame);
        return true;
      },
      [] { return false; });
  EXPECT_TRUE(status.ok()) << status;
  ASSERT_GE(frames.size(), 3u);
  EXPECT_TRUE(absl::StartsWith(frames.front(), "event: chain\n"));
  EXPECT_THAT(frames[1], HasSubstr("event: step-event\ndata: "));
  EXPECT_THAT(frames[1], HasSubstr("CHAIN_SUBMITTED"));
  EXPECT_THAT(frames[1], HasSubstr("id: "));
  EXPECT_THAT(frames[frames.size() - 2], HasSubstr("\"state\":\"SUCCEEDED\""));
  EXPECT_EQ(frames.back(), "event: end\ndata: {}\n\n");
}

TEST_F(DashboardEndpointsTest, ChainStreamRefusalsComeBeforeTheStream) {
  const conveyor::v1::Chain chain = Submit(DownloadRequest());
  EXPECT_EQ(endpoints_->ChainStreamCaller(As(""), Id(chain)).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(endpoints_->ChainStreamCaller(As(kOther), Id(chain)).status().code(),
            absl::StatusCode::kNotFound);
  HttpRequest bad_cursor = As(kReader);
  bad_cursor.last_event_id = "not a cursor";
  EXPECT_EQ(endpoints_->ChainStreamCaller(bad_cursor, Id(chain)).status().code(),
            absl::StatusCode::kInvalidArgument);
  HttpRequest bad_filter = As(kReader);
  bad_filter.query = {{"stage", "crop"}};
  EXPECT_EQ(endpoints_->OverviewStreamCaller(bad_filter).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(DashboardEndpointsTest, OverviewStreamSendsChangesOnly) {
  const conveyor::v1::Chain chain = Submit(DownloadRequest());
  conveyor::v1::SystemStatus sample;
  sample.add_stages()->set_kind(conveyor::v1::STAGE_KIND_DOWNLOAD);
  history_.Add(clock_.Now(), sample);
  std::vector<std::string> frames;
  int rounds = 0;
  absl::Status status = endpoints_->StreamOverview(
      *endpoints_->OverviewStreamCaller(As(kReader)), {},
      [&](const std::string& frame) {
        frames.push_back(frame);
        return true;
      },
      [&] {
        // Between the 2nd and 3rd read, the chain changes.
        if (rounds == 2) {
          EXPECT_EQ(endpoints_->CancelChain(Post(kUser), Id(chain)).status, 200);
        }
        return ++rounds > 8;
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  std::vector<std::string> kinds;
  for (const std::string& f : frames) kinds.push_back(f.substr(0, f.find('\n')));
  // The list once, the one status sample once, the list again after the
  // cancel; nothing for the reads that found no change.
  EXPECT_THAT(kinds, ::testing::ElementsAre("event: chains", "event: status", "event: chains"));
  EXPECT_THAT(frames[0], HasSubstr(chain.name()));
  EXPECT_THAT(frames[2], HasSubstr("CANCELLED"));
}

TEST_F(DashboardEndpointsTest, StatusIsRedactedForNonAdmins) {
  conveyor::v1::SystemStatus sample;
  conveyor::v1::StageStatus* stage = sample.add_stages();
  stage->set_kind(conveyor::v1::STAGE_KIND_RESIZE);
  stage->set_queued(42);
  history_.Add(clock_.Now(), sample);
  HttpReply reply = endpoints_->Status(As(kReader));
  EXPECT_EQ(reply.status, 200);
  EXPECT_THAT(reply.body, Not(HasSubstr("42")));
  EXPECT_EQ(endpoints_->Status(As("")).status, 401);
}

}  // namespace
}  // namespace conveyor::orchestrator::dashboard
