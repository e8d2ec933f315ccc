// `conveyor token new`'s parts: the token's shape and the tokens-file line.
#include "client/new_token.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace conveyor::client {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(NewTokenTest, Is32RandomBytesAsLowercaseHex) {
  absl::StatusOr<std::string> a = NewToken();
  absl::StatusOr<std::string> b = NewToken();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT(*a, MatchesRegex("[0-9a-f]{64}"));
  EXPECT_NE(*a, *b);
}

TEST(TokensFileLineTest, IsTheSha256OfTheTokenThenOwner) {
  // The digest of "abc" from FIPS 180-2, not from the code under test.
  absl::StatusOr<std::string> line =
      TokensFileLine("abc", {"alice", "acme", "chains.read,chains.cancel"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad "
            "alice acme chains.read,chains.cancel");
}

TEST(TokensFileLineTest, AcceptsEveryScopeAndTheEveryTenantStar) {
  EXPECT_TRUE(
      TokensFileLine("t", {"ops", "*", "chains.submit,chains.read,chains.cancel,admin"}).ok());
  EXPECT_TRUE(TokensFileLine("t", {"ci@example", "team_web-2", "chains.submit"}).ok());
}

TEST(TokensFileLineTest, RefusesWhatTheServerCouldNotParseOrUse) {
  const auto error = [](const TokenOwner& owner) {
    absl::StatusOr<std::string> line = TokensFileLine("t", owner);
    EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(line.status().message());
  };
  EXPECT_THAT(error({"", "acme", "admin"}), HasSubstr("--principal: must not be empty"));
  EXPECT_THAT(error({"al ice", "acme", "admin"}), HasSubstr("--principal: want printable"));
  EXPECT_THAT(error({"al\"ice", "acme", "admin"}), HasSubstr("--principal: want 1..256"));
  EXPECT_THAT(error({"al\\ice", "acme", "admin"}), HasSubstr("--principal: want 1..256"));
  EXPECT_THAT(error({std::string(257, 'p'), "acme", "admin"}), HasSubstr("--principal"));
  EXPECT_TRUE(TokensFileLine("t", {std::string(256, 'p'), "acme", "admin"}).ok());
  EXPECT_THAT(error({"alice", "ac me", "admin"}), HasSubstr("--tenant: want 1..64"));
  EXPECT_THAT(error({"alice", std::string(65, 'a'), "admin"}), HasSubstr("--tenant"));
  EXPECT_THAT(error({"alice", "acme", "chains.red"}), HasSubstr("got \"chains.red\""));
  EXPECT_THAT(error({"alice", "acme", "admin,admin"}), HasSubstr("\"admin\" given twice"));
  EXPECT_THAT(error({"alice", "acme", "admin,"}), HasSubstr("got \"\""));
  EXPECT_THAT(error({"alice", "acme", ""}), HasSubstr("--scopes: must not be empty"));
}

}  // namespace
}  // namespace conveyor::client
