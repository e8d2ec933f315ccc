// Which token the CLI sends: the order of the sources, and that a source
// given but unusable stops the CLI instead of falling through to the next.
#include "client/token_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/testing/process_fixture.h"

namespace conveyor::client {
namespace {

using ::conveyor::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class TokenSourceTest : public ::testing::Test {
 protected:
  TokenSourceTest() {
    home_ = dir_.path() + "/home";
    xdg_ = dir_.path() + "/xdg";
    std::filesystem::create_directories(home_ + "/.config/conveyor");
    std::filesystem::create_directories(xdg_ + "/conveyor");
    inputs_.home = home_;
  }

  std::string WriteToken(const std::string& path, const std::string& token, mode_t mode = 0600) {
    std::ofstream(path) << token << "\n";
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  std::string HomeDefault() const { return home_ + "/.config/conveyor/token"; }
  std::string XdgDefault() const { return xdg_ + "/conveyor/token"; }

  // Every source set, each with its own token.
  void SetAll() {
    inputs_.flag_token = "from-flag";
    inputs_.env_token = "from-env";
    inputs_.flag_token_file = WriteToken(dir_.path() + "/flag-file", "from-flag-file");
    inputs_.env_token_file = WriteToken(dir_.path() + "/env-file", "from-env-file");
    WriteToken(HomeDefault(), "from-default");
  }

  TempDir dir_;
  std::string home_, xdg_;
  TokenInputs inputs_;
};

TEST_F(TokenSourceTest, FirstSourceGivenWinsInOrder) {
  SetAll();
  const auto expect = [&](const std::string& value, TokenOrigin origin) {
    absl::StatusOr<BearerToken> token = ResolveToken(inputs_);
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_EQ(token->value, value);
    EXPECT_EQ(token->source.origin, origin);
  };
  expect("from-flag", TokenOrigin::kFlag);
  inputs_.flag_token.clear();
  expect("from-env", TokenOrigin::kEnv);
  inputs_.env_token.clear();
  expect("from-flag-file", TokenOrigin::kFlagFile);
  inputs_.flag_token_file.clear();
  expect("from-env-file", TokenOrigin::kEnvFile);
  inputs_.env_token_file.clear();
  expect("from-default", TokenOrigin::kDefaultFile);
}

TEST_F(TokenSourceTest, FileSourcesRecordTheirPath) {
  inputs_.env_token_file = WriteToken(dir_.path() + "/env-file", "t");
  absl::StatusOr<BearerToken> token = ResolveToken(inputs_);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->source.path, inputs_.env_token_file);
  EXPECT_EQ(DescribeTokenSource(token->source), "CONVEYOR_TOKEN_FILE=" + inputs_.env_token_file);
}

TEST_F(TokenSourceTest, DefaultFileIsUnderXdgConfigHomeWhenSet) {
  WriteToken(HomeDefault(), "from-home");
  WriteToken(XdgDefault(), "from-xdg");
  inputs_.xdg_config_home = xdg_;
  EXPECT_EQ(DefaultTokenPath(inputs_), XdgDefault());
  absl::StatusOr<BearerToken> token = ResolveToken(inputs_);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->value, "from-xdg");
  EXPECT_EQ(token->source.path, XdgDefault());
}

TEST_F(TokenSourceTest, RelativeXdgConfigHomeIsIgnored) {
  inputs_.xdg_config_home = "relative/dir";
  EXPECT_EQ(DefaultTokenPath(inputs_), HomeDefault());
  inputs_.home.clear();
  EXPECT_EQ(DefaultTokenPath(inputs_), "");
}

TEST_F(TokenSourceTest, NoTokenAnywhereSendsNoneAndNamesTheDefaultLookedFor) {
  absl::StatusOr<BearerToken> token = ResolveToken(inputs_);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->value, "");
  EXPECT_EQ(token->source.origin, TokenOrigin::kNone);
  EXPECT_EQ(token->source.path, HomeDefault());

  inputs_.home.clear();
  token = ResolveToken(inputs_);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->source.origin, TokenOrigin::kNone);
  EXPECT_EQ(token->source.path, "");
}

TEST_F(TokenSourceTest, MissingNamedFileIsAnError) {
  inputs_.flag_token_file = dir_.path() + "/nope";
  WriteToken(HomeDefault(), "from-default");
  absl::StatusOr<BearerToken> token = ResolveToken(inputs_);
  EXPECT_EQ(token.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(token.status().message()),
              AllOf(StartsWith("--token-file: "), HasSubstr(inputs_.flag_token_file)));
}

TEST_F(TokenSourceTest, TooOpenDefaultFileIsRefusedNotSkipped) {
  WriteToken(HomeDefault(), "from-default", 0644);
  absl::StatusOr<BearerToken> token = ResolveToken(inputs_);
  EXPECT_EQ(token.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(token.status().message()),
              AllOf(StartsWith("the default token file: "), HasSubstr("0644"),
                    HasSubstr("chmod 600 " + HomeDefault()), Not(HasSubstr("from-default"))));
}

TEST_F(TokenSourceTest, TooOpenTokenFileIsRefusedEvenWithAGoodDefault) {
  inputs_.flag_token_file = WriteToken(dir_.path() + "/open", "secret-one", 0640);
  WriteToken(HomeDefault(), "from-default");
  absl::StatusOr<BearerToken> token = ResolveToken(inputs_);
  EXPECT_EQ(token.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(token.status().message()),
              AllOf(StartsWith("--token-file: "), Not(HasSubstr("secret-one"))));
}

TEST_F(TokenSourceTest, BadTokenValueIsRefusedWithoutEchoingIt) {
  inputs_.flag_token = "two words";
  absl::StatusOr<BearerToken> token = ResolveToken(inputs_);
  EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(token.status().message()),
              AllOf(StartsWith("--token: "), Not(HasSubstr("two")), Not(HasSubstr("words"))));

  inputs_.flag_token.clear();
  inputs_.env_token = "line\nbreak";
  token = ResolveToken(inputs_);
  EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(token.status().message()), StartsWith("CONVEYOR_TOKEN: "));
}

TEST(DescribeTokenSourceTest, NamesFlagVariableOrFile) {
  EXPECT_EQ(DescribeTokenSource({TokenOrigin::kNone, "/h/.config/conveyor/token"}), "no token");
  EXPECT_EQ(DescribeTokenSource({TokenOrigin::kFlag, ""}), "--token");
  EXPECT_EQ(DescribeTokenSource({TokenOrigin::kEnv, ""}), "CONVEYOR_TOKEN");
  EXPECT_EQ(DescribeTokenSource({TokenOrigin::kFlagFile, "/t"}), "--token-file /t");
  EXPECT_EQ(DescribeTokenSource({TokenOrigin::kDefaultFile, "/d"}), "the default token file /d");
}

}  // namespace
}  // namespace conveyor::client
