// The Authenticator over real files (tokens, JWT keys) and a FakeClock: the
// order credentials are looked at, anonymous callers, reloads, and the
// options it refuses.
#include "orchestrator/auth/authenticator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "orchestrator/auth/scope_check.h"
#include "tests/orchestrator/auth/tokens_fixture.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/test_jwt.h"

namespace conveyor::orchestrator::auth {
namespace {

using ::conveyor::testing::TokensFileLine;
using ::conveyor::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kReader = "reader-token-7c1e5a9b3d2f4e6a8b0c1d2e3f4a5b6c";
const std::string kOperator = "operator-token-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d";

Credentials Bearer(const std::string& token) { return {{"Bearer " + token}, {}}; }

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(tokens_,
              absl::StrCat(TokensFileLine(kReader, "bob tenant-a chains.read"),
                           TokensFileLine(kOperator, "ops * chains.read,chains.cancel,admin"),
                           "cert:ci.conveyor ci tenant-b chains.submit,chains.read\n"));
  }

  std::unique_ptr<Authenticator> Make(AuthOptions options) {
    absl::StatusOr<std::unique_ptr<Authenticator>> made = Authenticator::Create(options, clock_);
    EXPECT_TRUE(made.ok()) << made.status();
    return made.ok() ? *std::move(made) : nullptr;
  }
  AuthOptions TokensOnly() {
    AuthOptions options;
    options.tokens_file = tokens_;
    return options;
  }

  ::conveyor::testing::TempDir dir_;
  const std::string tokens_ = dir_.path() + "/tokens";
  orchestrator::testing::FakeClock clock_;
};

TEST_F(AuthenticatorTest, BearerTokenIsItsLinesCaller) {
  auto auth = Make(TokensOnly());
  ASSERT_NE(auth, nullptr);
  absl::StatusOr<Caller> bob = auth->Authenticate(Bearer(kReader));
  ASSERT_TRUE(bob.ok()) << bob.status();
  EXPECT_EQ(bob->principal, "bob");
  EXPECT_EQ(bob->tenant, "tenant-a");
  // The scheme is case-insensitive (RFC 7235).
  EXPECT_TRUE(auth->Authenticate({{"bearer " + kOperator}, {}}).ok());
}

TEST_F(AuthenticatorTest, NoBadOrMalformedCredentialsAreUnauthenticatedWithoutTheToken) {
  auto auth = Make(TokensOnly());
  ASSERT_NE(auth, nullptr);
  struct Case {
    Credentials credentials;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "no credentials"},
           {Bearer("wrong-secret-value-123"), "unknown bearer token"},
           {{{"Basic d3Jvbmctc2VjcmV0LXZhbHVlLTEyMw=="}, {}}, "malformed authorization header"},
           {{{"Bearer"}, {}}, "malformed authorization header"},
           {{{"Bearer wrong-secret-value-123 x"}, {}}, "a space"},
           {{{"Bearer " + kReader, "Bearer " + kOperator}, {}}, "more than one authorization"},
           {{{}, {"stranger.conveyor"}}, "no cert: line"},
       }) {
    absl::StatusOr<Caller> caller = auth->Authenticate(c.credentials);
    EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated) << c.message;
    EXPECT_THAT(caller.status().message(), HasSubstr(c.message));
    EXPECT_THAT(caller.status().message(), Not(HasSubstr("wrong-secret")));
    EXPECT_THAT(caller.status().message(), Not(HasSubstr("d3Jvbmc")));
  }
}

TEST_F(AuthenticatorTest, TokenWithoutCancelIsPermissionDeniedOnCancel) {
  auto auth = Make(TokensOnly());
  ASSERT_NE(auth, nullptr);
  absl::StatusOr<Caller> bob = auth->Authenticate(Bearer(kReader));
  ASSERT_TRUE(bob.ok());
  EXPECT_TRUE(CheckScope(*bob, Scope::kRead).ok());
  absl::Status cancel = CheckScope(*bob, Scope::kCancel);
  EXPECT_EQ(cancel.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(cancel.message(), HasSubstr("needs scope \"chains.cancel\""));
}

TEST_F(AuthenticatorTest, ClientCertificateIsItsCertLineUnlessATokenIsSent) {
  auto auth = Make(TokensOnly());
  ASSERT_NE(auth, nullptr);
  absl::StatusOr<Caller> ci = auth->Authenticate({{}, {"other.name", "ci.conveyor"}});
  ASSERT_TRUE(ci.ok()) << ci.status();
  EXPECT_EQ(ci->principal, "ci");
  EXPECT_EQ(ci->tenant, "tenant-b");
  // A token decides alone, for better or worse.
  absl::StatusOr<Caller> bob = auth->Authenticate({{"Bearer " + kReader}, {"ci.conveyor"}});
  ASSERT_TRUE(bob.ok());
  EXPECT_EQ(bob->principal, "bob");
  EXPECT_EQ(auth->Authenticate({{"Bearer nope"}, {"ci.conveyor"}}).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(AuthenticatorTest, AnonymousAdmitsOnlyCallsWithoutATokenWithItsScopes) {
  AuthOptions options;
  options.allow_anonymous = true;
  auto auth = Make(options);
  ASSERT_NE(auth, nullptr);
  absl::StatusOr<Caller> anonymous = auth->Authenticate({});
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->principal, "anonymous");
  EXPECT_EQ(anonymous->tenant, "default");
  EXPECT_TRUE(anonymous->Has(Scope::kCancel));
  EXPECT_FALSE(anonymous->Has(Scope::kAdmin));
  // An unknown certificate is anonymous too; a token never silently is.
  EXPECT_TRUE(auth->Authenticate({{}, {"stranger"}}).ok());
  EXPECT_EQ(auth->Authenticate(Bearer(kReader)).status().code(),
            absl::StatusCode::kUnauthenticated);

  options.tokens_file = tokens_;
  options.anonymous_scopes = Scopes().Add(Scope::kRead);
  auto both = Make(options);
  ASSERT_NE(both, nullptr);
  EXPECT_EQ(both->Authenticate(Bearer(kReader))->principal, "bob");
  EXPECT_EQ(both->Authenticate(Bearer("bad")).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(both->Authenticate({})->scopes, Scopes().Add(Scope::kRead));
}

TEST_F(AuthenticatorTest, EditedTokensFileTakesEffectAndABadEditKeepsTheOld) {
  auto auth = Make(TokensOnly());
  ASSERT_NE(auth, nullptr);
  const std::string fresh = "fresh-token-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
  EXPECT_FALSE(auth->Authenticate(Bearer(fresh)).ok());
  WriteFile(tokens_, absl::StrCat("sha256:", Sha256Hex(fresh), " carol tenant-c chains.read\n"));
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(auth->Authenticate(Bearer(fresh)).ok());
  EXPECT_FALSE(auth->Authenticate(Bearer(kReader)).ok()) << "a removed line is gone";
  WriteFile(tokens_, "sha256:nothex carol tenant-c chains.read\n");
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(auth->Authenticate(Bearer(fresh)).ok()) << "the bad file is not taken";
}

TEST_F(AuthenticatorTest, JwtsGoToTheVerifierAndOtherTokensToTheFile) {
  const ::conveyor::testing::TestSigningKey key = ::conveyor::testing::TestSigningKey::Ec();
  const std::string keys = dir_.path() + "/keys.pem";
  WriteFile(keys, key.PublicPem());
  AuthOptions options = TokensOnly();
  options.jwt_keys_file = keys;
  options.jwt_issuer = "https://id.example";
  options.jwt_audience = "conveyor";
  auto auth = Make(options);
  ASSERT_NE(auth, nullptr);
  const std::string claims = absl::StrCat(
      R"({"sub":"dana","tenant":"tenant-d","iss":"https://id.example","aud":"conveyor","exp":)",
      absl::ToUnixSeconds(clock_.Now()) + 60, R"(,"scope":"chains.read"})");
  const std::string jwt = key.Sign(R"({"alg":"ES256"})", claims);
  absl::StatusOr<Caller> dana = auth->Authenticate(Bearer(jwt));
  ASSERT_TRUE(dana.ok()) << dana.status();
  EXPECT_EQ(dana->principal, "dana");
  EXPECT_EQ(auth->Authenticate(Bearer(kReader))->principal, "bob");
  clock_.Advance(absl::Seconds(120));
  absl::StatusOr<Caller> expired = auth->Authenticate(Bearer(jwt));
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(expired.status().message(), HasSubstr("JWT expired"));
}

TEST_F(AuthenticatorTest, RefusesOptionsWithoutASourceOrWithHalfAJwtSetup) {
  struct Case {
    AuthOptions options;
    std::string message;
  };
  AuthOptions none;
  AuthOptions keys_only;
  keys_only.jwt_keys_file = tokens_;
  AuthOptions issuer_only = TokensOnly();
  issuer_only.jwt_issuer = "https://id.example";
  AuthOptions missing = TokensOnly();
  missing.tokens_file = dir_.path() + "/none";
  AuthOptions bad_keys;
  bad_keys.jwt_keys_file = tokens_;  // not a key
  bad_keys.jwt_issuer = "i";
  bad_keys.jwt_audience = "a";
  for (const Case& c : std::vector<Case>{
           {none, "no caller authentication: pass --tokens-file"},
           {keys_only, "--jwt-keys needs --jwt-issuer and --jwt-audience"},
           {issuer_only, "need --jwt-keys"},
           {missing, "--tokens-file: cannot read"},
           {bad_keys, "--jwt-keys: "},
       }) {
    absl::StatusOr<std::unique_ptr<Authenticator>> made = Authenticator::Create(c.options, clock_);
    EXPECT_FALSE(made.ok()) << c.message;
    EXPECT_THAT(made.status().message(), HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace conveyor::orchestrator::auth
