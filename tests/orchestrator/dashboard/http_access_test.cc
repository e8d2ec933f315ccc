// The dashboard's HTTP access rules with a real Authenticator over a tokens
// file: where a token comes from (header, cookie), the scope a request
// needs, the cookie's attributes, the CSRF check and the HTTP status of
// each code.
#include "orchestrator/dashboard/http_access.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/orchestrator/auth/tokens_fixture.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::orchestrator::dashboard {
namespace {

using ::conveyor::testing::TokensFileLine;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kReader = "reader-token-7c1e5a9b3d2f4e6a8b0c1d2e3f4a5b6c";
const std::string kOperator = "operator-token-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d";

class HttpAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    authenticator_ = conveyor::testing::WriteTokensFileAuthenticator(
        tokens_,
        absl::StrCat(TokensFileLine(kReader, "bob tenant-a chains.read"),
                     TokensFileLine(kOperator, "ops * chains.read,chains.cancel,admin")),
        clock_);
    ASSERT_NE(authenticator_, nullptr);
  }

  conveyor::testing::TempDir dir_;
  const std::string tokens_ = dir_.path() + "/tokens";
  testing::FakeClock clock_;
  std::unique_ptr<auth::Authenticator> authenticator_;
};

HttpCredentials Header(const std::string& token) { return {{"Bearer " + token}, ""}; }
HttpCredentials Cookie(const std::string& cookie) { return {{}, cookie}; }

TEST(CookieValueTest, FindsTheNamedCookieAmongOthers) {
  EXPECT_EQ(CookieValue("a=1; conveyor_session=tok; b=2", "conveyor_session"), "tok");
  EXPECT_EQ(CookieValue("conveyor_session=tok", "conveyor_session"), "tok");
  EXPECT_EQ(CookieValue("xconveyor_session=no; other=1", "conveyor_session"), "");
  EXPECT_EQ(CookieValue("", "conveyor_session"), "");
}

TEST(CredentialsOfTest, AuthorizationHeaderWinsOverTheCookie) {
  auth::Credentials c = CredentialsOf({{"Bearer from-header"}, "conveyor_session=from-cookie"});
  EXPECT_EQ(c.authorization, std::vector<std::string>{"Bearer from-header"});
  c = CredentialsOf(Cookie("conveyor_session=from-cookie"));
  EXPECT_EQ(c.authorization, std::vector<std::string>{"Bearer from-cookie"});
  EXPECT_TRUE(CredentialsOf(Cookie("other=1")).authorization.empty());
  EXPECT_TRUE(CredentialsOf(Cookie("")).peer_identities.empty());
}

TEST_F(HttpAccessTest, ReaderMayReadFromHeaderOrCookie) {
  absl::StatusOr<Caller> caller = Authorize(*authenticator_, Header(kReader), Scope::kRead);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->principal, "bob");
  EXPECT_EQ(caller->tenant, "tenant-a");
  caller = Authorize(*authenticator_, Cookie("conveyor_session=" + kReader), Scope::kRead);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->principal, "bob");
}

TEST_F(HttpAccessTest, ReaderMayNotCancel) {
  absl::StatusOr<Caller> caller = Authorize(*authenticator_, Header(kReader), Scope::kCancel);
  EXPECT_EQ(caller.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(caller.status().message(), HasSubstr("chains.cancel"));
  EXPECT_EQ(HttpStatusFor(caller.status().code()), 403);
  EXPECT_TRUE(Authorize(*authenticator_, Header(kOperator), Scope::kCancel).ok());
}

TEST_F(HttpAccessTest, UnknownOrMissingTokenIsUnauthenticated) {
  for (const HttpCredentials& http :
       {Header("not-a-token"), Cookie("conveyor_session=not-a-token"), Cookie(""),
        HttpCredentials{{"Basic Ym9iOnB3"}, ""},
        HttpCredentials{{"Bearer " + kReader, "Bearer " + kReader}, ""}}) {
    absl::StatusOr<Caller> caller = Authorize(*authenticator_, http, Scope::kRead);
    EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated) << http.cookie;
    EXPECT_EQ(HttpStatusFor(caller.status().code()), 401);
    EXPECT_THAT(caller.status().message(), Not(HasSubstr("not-a-token")));
  }
}

TEST_F(HttpAccessTest, BadHeaderIsNotRescuedByAGoodCookie) {
  // As over gRPC: a client that sent a header meant it.
  HttpCredentials both{{"Bearer wrong"}, "conveyor_session=" + kOperator};
  EXPECT_EQ(Authorize(*authenticator_, both, Scope::kRead).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(SessionCookieTest, IsHttpOnlyStrictAndSecureOverTls) {
  EXPECT_EQ(SessionCookieHeader("tok", /*secure=*/true),
            "conveyor_session=tok; Path=/; HttpOnly; SameSite=Strict; Secure");
  EXPECT_EQ(SessionCookieHeader("tok", /*secure=*/false),
            "conveyor_session=tok; Path=/; HttpOnly; SameSite=Strict");
  EXPECT_EQ(ClearedSessionCookieHeader(false),
            "conveyor_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
}

TEST(SessionCookieTest, RefusesTokensThatCannotBeCookies) {
  EXPECT_TRUE(CheckCookieToken("abc.def-ghi_jkl~").ok());
  for (const std::string& token :
       {std::string(""), std::string("sekrit one"), std::string("sekrit;one"),
        std::string("sekrit\"one"), std::string("sekrit,one"), std::string("sekrit\none"),
        std::string("sekrit\xc3\xa9"), std::string(kMaxTokenBytes + 1, 'a')}) {
    absl::Status s = CheckCookieToken(token);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << token;
    EXPECT_THAT(s.message(), Not(HasSubstr("sekrit")));  // a token is never echoed
  }
}

TEST(CsrfTest, NeedsTheHeaderAndThisOrigin) {
  EXPECT_TRUE(CheckCsrf("1", "", "127.0.0.1:8080").ok());
  EXPECT_TRUE(CheckCsrf("1", "http://127.0.0.1:8080", "127.0.0.1:8080").ok());
  EXPECT_TRUE(CheckCsrf("1", "https://Dash.Example:443", "dash.example:443").ok());
  EXPECT_EQ(CheckCsrf("", "", "127.0.0.1:8080").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CheckCsrf("yes", "", "127.0.0.1:8080").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CheckCsrf("1", "http://evil.example", "127.0.0.1:8080").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CheckCsrf("1", "null", "127.0.0.1:8080").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CheckCsrf("1", "http://127.0.0.1:8080", "").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(HttpStatusForTest, MapsEachCode) {
  using C = absl::StatusCode;
  const std::pair<C, int> cases[] = {
      {C::kOk, 200},
      {C::kInvalidArgument, 400},
      {C::kOutOfRange, 400},
      {C::kUnauthenticated, 401},
      {C::kPermissionDenied, 403},
      {C::kNotFound, 404},
      {C::kAlreadyExists, 409},
      {C::kAborted, 409},
      {C::kFailedPrecondition, 409},
      {C::kResourceExhausted, 429},
      {C::kCancelled, 499},
      {C::kUnimplemented, 501},
      {C::kUnavailable, 503},
      {C::kDeadlineExceeded, 504},
      {C::kInternal, 500},
      {C::kDataLoss, 500},
      {C::kUnknown, 500},
  };
  for (const auto& [code, http] : cases) EXPECT_EQ(HttpStatusFor(code), http) << code;
}

}  // namespace
}  // namespace conveyor::orchestrator::dashboard
