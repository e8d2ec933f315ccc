// Redis ACL credentials against a real redis-server whose default user is
// off and whose one user has a password: the password from a file, a wrong
// or missing one refused with our own message (never the password, never
// Redis's text), and the orchestrator binary started with the flags.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <random>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "orchestrator/chain_api.h"
#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/redis/redis_credentials.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/redis_node.h"

namespace conveyor::orchestrator {
namespace {

using ::conveyor::testing::WriteFile;

constexpr char kUser[] = "conveyor";
constexpr char kPassword[] = "acl-pw-7Hq2-x9Lk";

class RedisAclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(std::random_device{}());
    auto node = testing::RedisNode::Start(
        "/usr/bin/redis-server", dir_.path(), "acl",
        {"save \"\"", "appendonly no", "user default off",
         absl::StrCat("user ", kUser, " on >", kPassword, " ~* &* +@all")},
        rng, absl::StrCat(kUser, ":", kPassword));
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = *std::move(node);
  }

  std::string Url() const { return absl::StrCat("redis://127.0.0.1:", node_->port()); }

  // The endpoint of Url() with the flags applied; fails the test if refused.
  RedisEndpoint Endpoint(const RedisCredentialFlags& flags) const {
    RedisEndpoint endpoint = *ParseRedisUrl(Url());
    absl::Status applied = ApplyRedisCredentials(flags, endpoint);
    EXPECT_TRUE(applied.ok()) << applied;
    return endpoint;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::RedisNode> node_;
};

TEST_F(RedisAclTest, PasswordFromAFileWithItsTrailingNewline) {
  const std::string file =
      WriteFile(dir_.path() + "/redis-password", absl::StrCat(kPassword, "\n"));
  RedisConnection conn(Endpoint({kUser, file}), absl::Seconds(1), absl::Seconds(2));
  ASSERT_TRUE(conn.Connect().ok());
  ASSERT_TRUE(conn.Command({"SET", "k", "v"}).ok());
  EXPECT_EQ(conn.Command({"GET", "k"})->str, "v");
}

TEST_F(RedisAclTest, WrongPasswordIsAClearErrorWithoutThePassword) {
  const std::string file = WriteFile(dir_.path() + "/wrong", "not-the-acl-password\n");
  RedisConnection conn(Endpoint({kUser, file}), absl::Seconds(1), absl::Seconds(2));
  absl::Status status = conn.Connect();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "refused AUTH as user \"conveyor\" (WRONGPASS)"))
      << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "--redis-password-file")) << status;
  EXPECT_FALSE(absl::StrContains(status.ToString(), "not-the-acl-password")) << status;
  // Redis's own words stay out of it.
  EXPECT_FALSE(absl::StrContains(status.message(), "username-password pair")) << status;
  // ... and the Orchestrator's callers get it as it is: our words.
  EXPECT_EQ(ChainApi::PublicStoreError(status), status);
}

TEST_F(RedisAclTest, NoPasswordIsNoauthMappedToAClearUnavailable) {
  RedisConnection conn(*ParseRedisUrl(Url()), absl::Seconds(1), absl::Seconds(2));
  absl::StatusOr<RedisValue> reply = conn.Command({"GET", "k"});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_TRUE(absl::StrContains(reply.status().message(), "NOAUTH")) << reply.status();
  EXPECT_TRUE(absl::StrContains(reply.status().message(), "--redis-password-file"))
      << reply.status();
  EXPECT_FALSE(absl::StrContains(reply.status().message(), "Authentication required"))
      << reply.status();
  EXPECT_EQ(ChainApi::PublicStoreError(reply.status()), reply.status());
  // In a pipeline too: the whole pipeline is UNAVAILABLE.
  absl::StatusOr<std::vector<RedisValue>> pipe = conn.Pipeline({{"GET", "k"}, {"GET", "j"}});
  EXPECT_EQ(pipe.status().code(), absl::StatusCode::kUnavailable) << pipe.status();
}

TEST_F(RedisAclTest, OrchestratorServesWithUserAndPasswordFile) {
  const std::string file =
      WriteFile(dir_.path() + "/redis-password", absl::StrCat(kPassword, "\n"));
  const std::string log = dir_.path() + "/orchestrator.log";
  testing::OrchestratorProcess orchestrator(
      Url(), {}, {"--redis-user", kUser, "--redis-password-file", file}, log);
  ASSERT_TRUE(orchestrator.ready().ok()) << orchestrator.ready() << testing::ReadFile(log);
  EXPECT_FALSE(absl::StrContains(testing::ReadFile(log), kPassword));
}

TEST_F(RedisAclTest, OrchestratorRefusesAPlaceholderPasswordFile) {
  // What deploy/k8s/secrets.yaml shipped.
  const std::string file = WriteFile(dir_.path() + "/placeholder", "change-me-redis-password\n");
  const std::string log = dir_.path() + "/orchestrator.log";
  testing::OrchestratorProcess orchestrator(
      Url(), {}, {"--redis-user", kUser, "--redis-password-file", file}, log);
  EXPECT_FALSE(orchestrator.ready().ok());
  EXPECT_EQ(orchestrator.process().Wait(absl::Seconds(20)), 2);
  const std::string text = testing::ReadFile(log);
  EXPECT_TRUE(absl::StrContains(text, "--redis-password-file")) << text;
  EXPECT_TRUE(absl::StrContains(text, "placeholder")) << text;
  EXPECT_FALSE(absl::StrContains(text, "change-me-redis-password")) << text;
}

TEST(ApplyRedisCredentialsTest, OneSourcePerCredential) {
  testing::TempDir dir;
  const std::string file = WriteFile(dir.path() + "/pw", "k3J9x-Qp2Lr8\n");
  RedisEndpoint both = *ParseRedisUrl("redis://:k3J9x-Qp2Lr8@h:1");
  absl::Status twice = ApplyRedisCredentials({"", file}, both);
  EXPECT_EQ(twice.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(absl::StrContains(twice.message(), "k3J9x")) << twice;
  RedisEndpoint users = *ParseRedisUrl("redis://u:k3J9x-Qp2Lr8@h:1");
  EXPECT_EQ(ApplyRedisCredentials({"other", ""}, users).code(),
            absl::StatusCode::kFailedPrecondition);
  RedisEndpoint no_password = *ParseRedisUrl("redis://h:1");
  absl::Status user_only = ApplyRedisCredentials({"conveyor", ""}, no_password);
  EXPECT_EQ(user_only.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(user_only.message(), "--redis-password-file")) << user_only;
  RedisEndpoint none = *ParseRedisUrl("redis://h:1");
  EXPECT_TRUE(ApplyRedisCredentials({}, none).ok());
}

TEST(ApplyRedisCredentialsTest, PlaceholderPasswordsAreRefusedInTheUrlAndTheFile) {
  // deploy/k8s/orchestrator.yaml builds the URL from the Secret's password.
  RedisEndpoint url = *ParseRedisUrl("redis://:change-me-redis-password@h:6379/0");
  absl::Status in_url = ApplyRedisCredentials({}, url);
  EXPECT_EQ(in_url.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(absl::StrContains(in_url.message(), "change-me-redis")) << in_url;
  testing::TempDir dir;
  RedisEndpoint file = *ParseRedisUrl("redis://h:6379");
  absl::Status in_file =
      ApplyRedisCredentials({"", WriteFile(dir.path() + "/pw", "change-me\n")}, file);
  EXPECT_EQ(in_file.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(in_file.message(), "--redis-password-file: ")) << in_file;
  RedisEndpoint missing = *ParseRedisUrl("redis://h:6379");
  EXPECT_EQ(ApplyRedisCredentials({"", dir.path() + "/none"}, missing).code(),
            absl::StatusCode::kNotFound);
}

TEST(ApplyRedisCredentialsTest, UrlPasswordStillWorks) {
  RedisEndpoint url = *ParseRedisUrl("redis://u:k3J9x-Qp2Lr8@h:1");
  EXPECT_TRUE(ApplyRedisCredentials({}, url).ok());  // with a warning in the log
  EXPECT_EQ(url.user, "u");
  EXPECT_EQ(url.password, "k3J9x-Qp2Lr8");
}

}  // namespace
}  // namespace conveyor::orchestrator
