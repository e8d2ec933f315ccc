#include "orchestrator/auth/tokens_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::orchestrator::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kAliceToken = "4f1c0e7d9b2a8c6e5f3d1b0a9c8e7f6d5c4b3a291817161514131211100f0e0d";
const std::string kBobToken = "bob-token-0123456789abcdef0123456789abcdef";

std::string Line(const std::string& token, const std::string& rest) {
  return absl::StrCat("sha256:", Sha256Hex(token), " ", rest, "\n");
}

TEST(TokensFileTest, TokensAndCertificatesAreTheirLinesCallers) {
  const std::string text =
      absl::StrCat("# operators\n\n", Line(kAliceToken, "alice tenant-a chains.submit,chains.read"),
                   "  ", Line(kBobToken, "bob * admin,chains.read"),
                   "cert:spiffe://conveyor/ci   ci   tenant-b\tchains.submit\n");
  absl::StatusOr<TokenTable> table = ParseTokensFile(text, "tokens");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->token_count(), 2u);
  EXPECT_EQ(table->certificate_count(), 1u);

  std::optional<Caller> alice = table->FindToken(kAliceToken);
  ASSERT_TRUE(alice.has_value());
  EXPECT_EQ(alice->principal, "alice");
  EXPECT_EQ(alice->tenant, "tenant-a");
  EXPECT_EQ(alice->scopes, Scopes().Add(Scope::kSubmit).Add(Scope::kRead));
  std::optional<Caller> bob = table->FindToken(kBobToken);
  ASSERT_TRUE(bob.has_value());
  EXPECT_TRUE(bob->all_tenants());
  EXPECT_FALSE(table->FindToken("not-a-token").has_value());
  EXPECT_FALSE(table->FindToken(Sha256Hex(kAliceToken)).has_value()) << "the digest is no token";

  std::optional<Caller> ci = table->FindCertificate({"ci.example", "spiffe://conveyor/ci"});
  ASSERT_TRUE(ci.has_value());
  EXPECT_EQ(ci->principal, "ci");
  EXPECT_EQ(ci->tenant, "tenant-b");
  EXPECT_FALSE(table->FindCertificate({"spiffe://conveyor/other"}).has_value());
}

TEST(TokensFileTest, BadLinesNameFileAndLineAndNeverTheValue) {
  struct Case {
    std::string line;
    std::string message;
  };
  const std::string digest = Sha256Hex(kAliceToken);
  for (const Case& c : std::vector<Case>{
           {"sha256:" + digest + " alice default", "want \"<credential> <principal>"},
           {"sha256:" + digest + " alice default chains.write", "unknown scope \"chains.write\""},
           {"sha256:" + digest + " alice bad.tenant chains.read", "tenant \"bad.tenant\""},
           {"sha256:" + digest.substr(0, 63) + " alice default chains.read",
            "want 64 lowercase hex"},
           {"sha256:" + absl::AsciiStrToUpper(digest) + " a default chains.read",
            "want 64 lowercase hex"},
           {kAliceToken + " alice default chains.read", "credential: want sha256:"},
           {"cert: alice default chains.read", "cert: want the certificate"},
           {"sha256:" + digest + " al\"ice default chains.read", "principal"},
       }) {
    absl::StatusOr<TokenTable> table =
        ParseTokensFile(absl::StrCat("# header\n", c.line, "\n"), "/etc/tokens");
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument) << c.line;
    EXPECT_THAT(table.status().message(), HasSubstr("/etc/tokens:2: ")) << c.line;
    EXPECT_THAT(table.status().message(), HasSubstr(c.message)) << c.line;
    EXPECT_THAT(table.status().message(), Not(HasSubstr(digest.substr(0, 16)))) << c.line;
    EXPECT_THAT(table.status().message(), Not(HasSubstr(kAliceToken.substr(0, 16)))) << c.line;
  }
}

TEST(TokensFileTest, DuplicateCredentialNamesTheFirstLine) {
  const std::string text =
      Line(kAliceToken, "alice default chains.read") + "\n" + Line(kAliceToken, "mallory * admin");
  absl::StatusOr<TokenTable> table = ParseTokensFile(text, "tokens");
  EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(table.status().message(), HasSubstr("tokens:3: the same credential is already on "
                                                  "line 1"));
}

TEST(TokensFileTest, PlaceholderAndEmptyTokenDigestsAreRefused) {
  for (const std::string& guessable :
       {std::string("change-me"), std::string("password"), std::string("")}) {
    absl::StatusOr<TokenTable> table = ParseTokensFile(Line(guessable, "ops * admin"), "tokens");
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument) << guessable;
    EXPECT_THAT(table.status().message(), HasSubstr("tokens:1: the digest is of a placeholder"));
  }
}

TEST(TokensFileTest, FileWithoutCredentialsIsRefused) {
  absl::StatusOr<TokenTable> table = ParseTokensFile("# nothing yet\n\n", "tokens");
  EXPECT_EQ(table.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(table.status().message(), HasSubstr("tokens: no credential"));
}

TEST(TokensFileTest, ReadsTheFileAndNamesAMissingOne) {
  ::conveyor::testing::TempDir dir;
  const std::string path = dir.path() + "/tokens";
  std::ofstream(path) << Line(kBobToken, "bob default chains.read");
  ::chmod(path.c_str(), 0600);
  absl::StatusOr<TokenTable> table = ReadTokensFile(path);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_TRUE(table->FindToken(kBobToken).has_value());
  absl::StatusOr<TokenTable> missing = ReadTokensFile(dir.path() + "/none");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(dir.path() + "/none"));
}

TEST(TokensFileTest, PrincipalNames) {
  EXPECT_TRUE(IsPrincipalName("alice"));
  EXPECT_TRUE(IsPrincipalName("spiffe://conveyor/ci"));
  EXPECT_FALSE(IsPrincipalName(""));
  EXPECT_FALSE(IsPrincipalName("a b"));
  EXPECT_FALSE(IsPrincipalName("a\nb"));
  EXPECT_FALSE(IsPrincipalName(std::string(257, 'a')));
}

}  // namespace
}  // namespace conveyor::orchestrator::auth
