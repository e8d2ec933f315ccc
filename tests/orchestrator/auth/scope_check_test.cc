#include "orchestrator/auth/scope_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace conveyor::orchestrator::auth {
namespace {

using ::testing::HasSubstr;

TEST(ScopeCheckTest, ParsesEveryScopeName) {
  absl::StatusOr<Scopes> scopes = ParseScopeList("chains.submit,chains.read,chains.cancel,admin");
  ASSERT_TRUE(scopes.ok()) << scopes.status();
  EXPECT_EQ(*scopes, Scopes::All());
  EXPECT_EQ(DescribeScopes(*scopes), "chains.submit,chains.read,chains.cancel,admin");
}

TEST(ScopeCheckTest, UnknownOrEmptyScopeIsInvalidAndNamed) {
  absl::StatusOr<Scopes> unknown = ParseScopeList("chains.read,chains.delete");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown scope \"chains.delete\""));
  EXPECT_EQ(ParseScopeList("chains.read,,admin").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseScopeList("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ScopeCheckTest, KnownScopesSkipsOtherServicesScopes) {
  Scopes scopes = KnownScopes("openid chains.read  profile admin", ' ');
  EXPECT_TRUE(scopes.Has(Scope::kRead));
  EXPECT_TRUE(scopes.Has(Scope::kAdmin));
  EXPECT_FALSE(scopes.Has(Scope::kSubmit));
  EXPECT_EQ(DescribeScopes(KnownScopes("openid", ' ')), "no scope");
}

TEST(ScopeCheckTest, MissingScopeIsPermissionDeniedNamingItAndWhatThePrincipalHas) {
  const Caller bob{"bob", "default", Scopes().Add(Scope::kRead)};
  EXPECT_TRUE(CheckScope(bob, Scope::kRead).ok());
  absl::Status denied = CheckScope(bob, Scope::kCancel);
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(),
            "this call needs scope \"chains.cancel\"; principal \"bob\" has chains.read");
  EXPECT_THAT(CheckScope(Caller{"eve", "default", Scopes()}, Scope::kAdmin).message(),
              HasSubstr("principal \"eve\" has no scope"));
}

}  // namespace
}  // namespace conveyor::orchestrator::auth
