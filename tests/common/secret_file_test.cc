// Secret files and the placeholder refusal: real files in a temp dir.
#include "common/secret_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "tests/testing/process_fixture.h"

namespace conveyor {
namespace {

using ::conveyor::testing::WriteFile;

TEST(IsPlaceholderSecretTest, RefusesEveryValueShippedInDeployAndTheDocs) {
  for (const char* shipped : {
           "change-me-redis-password",                        // deploy/k8s/secrets.yaml
           "whsec_Y2hhbmdlLW1lLWNoYW5nZS1tZS1jaGFuZ2UtbWU=",  // deploy/k8s/secrets.yaml
           "change-me",                                       // deploy/k8s/secrets.yaml (S3)
           "whsec_Y29udmV5b3ItZGV2LW9ubHktY2hhbmdlLW1l",      // deploy/compose.yaml
           "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",          // the Standard Webhooks example
           "CHANGEME", " password ", "secret", "whsec_...",
           "my-Change-Me-token",  // anything marked to be replaced
       }) {
    EXPECT_TRUE(IsPlaceholderSecret(shipped)) << shipped;
  }
  for (const char* real :
       {"k3J9x-Qp2Lr8-Vt6Wz", "whsec_dGVzdC1vbmx5LXdlYmhvb2sta2V5LXRlbmFudC1hY21lLTE=",
        "passwordless-is-not-the-word-9f2"}) {
    EXPECT_FALSE(IsPlaceholderSecret(real)) << real;
  }
}

TEST(CheckSecretValueTest, NamesWhatNeverTheValue) {
  absl::Status placeholder = CheckSecretValue("change-me-redis-password", "--redis-password-file");
  EXPECT_EQ(placeholder.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(placeholder.message(), "--redis-password-file is a placeholder"));
  EXPECT_FALSE(absl::StrContains(placeholder.message(), "change-me-redis")) << placeholder;
  EXPECT_EQ(CheckSecretValue("  \n", "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(CheckSecretValue("k3J9x-Qp2Lr8-Vt6Wz", "x").ok());
}

TEST(ReadSecretFileTest, StripsOneTrailingNewline) {
  testing::TempDir dir;
  EXPECT_EQ(*ReadSecretFile(WriteFile(dir.path() + "/lf", "k3J9x-Qp2Lr8\n")), "k3J9x-Qp2Lr8");
  EXPECT_EQ(*ReadSecretFile(WriteFile(dir.path() + "/crlf", "k3J9x-Qp2Lr8\r\n")), "k3J9x-Qp2Lr8");
  EXPECT_EQ(*ReadSecretFile(WriteFile(dir.path() + "/bare", "k3J9x-Qp2Lr8")), "k3J9x-Qp2Lr8");
  // Spaces are part of a password.
  EXPECT_EQ(*ReadSecretFile(WriteFile(dir.path() + "/spaces", " k3J9x Qp2Lr8 \n")),
            " k3J9x Qp2Lr8 ");
}

TEST(ReadSecretFileTest, RefusesMissingEmptyPlaceholderAndMultiLineFiles) {
  testing::TempDir dir;
  absl::Status missing = ReadSecretFile(dir.path() + "/none").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(missing.message(), dir.path() + "/none")) << missing;
  EXPECT_EQ(ReadSecretFile(dir.path()).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadSecretFile(WriteFile(dir.path() + "/empty", "\n")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::Status placeholder =
      ReadSecretFile(WriteFile(dir.path() + "/p", "change-me-redis-password\n")).status();
  EXPECT_EQ(placeholder.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(placeholder.message(), "placeholder")) << placeholder;
  EXPECT_FALSE(absl::StrContains(placeholder.message(), "change-me-redis")) << placeholder;
  absl::Status lines =
      ReadSecretFile(WriteFile(dir.path() + "/two", "k3J9x-Qp2Lr8\nsecond\n")).status();
  EXPECT_EQ(lines.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(absl::StrContains(lines.message(), "k3J9x")) << lines;
}

TEST(ReadSecretFileTest, WorldReadableFileIsReadWithAWarning) {
  testing::TempDir dir;
  // The warning goes to the log (stderr); the read itself succeeds.
  EXPECT_EQ(*ReadSecretFile(WriteFile(dir.path() + "/open", "k3J9x-Qp2Lr8\n", 0644)),
            "k3J9x-Qp2Lr8");
}

}  // namespace
}  // namespace conveyor
