// StepContext checks: chain names and tenant names.
#include "common/step_context.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "common/status_details.h"

namespace conveyor {
namespace {

v1::StepContext Context(std::string chain, std::string tenant) {
  v1::StepContext context;
  context.set_chain(std::move(chain));
  context.set_tenant(std::move(tenant));
  return context;
}

TEST(IsTenantNameTest, LettersDigitsDashUnderscoreUpTo64) {
  for (const std::string& ok : {std::string("default"), std::string("acme"),
                                std::string("Team_7-eu"), std::string(64, 'a')}) {
    EXPECT_TRUE(IsTenantName(ok)) << ok;
  }
  for (const std::string& bad :
       {std::string(""), std::string(65, 'a'), std::string("a b"), std::string("a/b"),
        std::string(".."), std::string("a\nb"), std::string("t\xc3\xa9")}) {
    EXPECT_FALSE(IsTenantName(bad)) << bad;
  }
}

TEST(CheckStepContextTest, DirectCallsAndChainCallsPass) {
  EXPECT_TRUE(CheckStepContext(Context("", "")).ok());
  EXPECT_TRUE(CheckStepContext(Context("chains/abc", "acme")).ok());
  EXPECT_TRUE(CheckStepContext(Context("", "acme")).ok());
}

TEST(CheckStepContextTest, NamesTheBadFieldWithItsReason) {
  absl::Status chain = CheckStepContext(Context("chains/a\r\nb", "acme"));
  EXPECT_EQ(chain.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(chain), kReasonInvalidChainName);
  absl::Status tenant = CheckStepContext(Context("chains/abc", "a\r\nb"));
  EXPECT_EQ(tenant.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(tenant), kReasonInvalidTenantName);
  EXPECT_TRUE(absl::StartsWith(tenant.message(), "context.tenant: ")) << tenant;
  EXPECT_EQ(std::string(tenant.message()).find('\r'), std::string::npos) << tenant;
}

}  // namespace
}  // namespace conveyor
