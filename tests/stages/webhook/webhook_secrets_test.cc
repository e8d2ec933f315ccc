// The webhook secrets file: parsing (errors name the line, never the
// secret), per-tenant lookup, and reloading when the file changes (a real
// file in a temp dir).
#include "stages/webhook/webhook_secrets.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "stages/webhook/signature.h"
#include "tests/testing/webhook_secrets_file.h"

namespace conveyor::stages::webhook {
namespace {

using ::conveyor::testing::WebhookSecretsFile;

constexpr char kDefault[] = "whsec_dGVzdC1vbmx5LXdlYmhvb2sta2V5LXRlbmFudC1kZWZhdWx0";
constexpr char kAcme1[] = "whsec_dGVzdC1vbmx5LXdlYmhvb2sta2V5LXRlbmFudC1hY21lLTE=";
constexpr char kAcme2[] = "whsec_dGVzdC1vbmx5LXdlYmhvb2sta2V5LXRlbmFudC1hY21lLTI=";

std::string Key(const char* secret) { return *ParseWebhookSecret(secret); }

TEST(ParseWebhookSecretsTest, GroupsSecretsByTenantInFileOrder) {
  auto keys = ParseWebhookSecrets(absl::StrCat("# tenant secret\n\n", "default ", kDefault, "\r\n",
                                               "acme\t", kAcme1, "   # old\n", "acme ", kAcme2,
                                               "\n", "acme ", kAcme1, "\n"));
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ(keys->at("default"), std::vector<std::string>{Key(kDefault)});
  // The repeated line counts once.
  EXPECT_EQ(keys->at("acme"), (std::vector<std::string>{Key(kAcme1), Key(kAcme2)}));
}

TEST(ParseWebhookSecretsTest, ErrorsNameTheLineNeverTheSecret) {
  struct Case {
    std::string text;
    absl::StatusCode code;
    std::string says;
  };
  const std::string secret = "whsec_c2VjcmV0LXZhbHVlLW5vdC10by1iZS1lY2hvZWQ=";
  for (const Case& c : std::vector<Case>{
           {"default\n", absl::StatusCode::kInvalidArgument, "line 1: want"},
           {"# only comments\n", absl::StatusCode::kFailedPrecondition, "no \"<tenant> <secret>\""},
           {absl::StrCat("\nde/fault ", secret), absl::StatusCode::kInvalidArgument,
            "line 2: the first field is not a tenant name"},
           {absl::StrCat(secret, "/ default"), absl::StatusCode::kInvalidArgument,
            "line 1: the first field"},
           {absl::StrCat("a ", secret, " extra"), absl::StatusCode::kInvalidArgument, "line 1"},
           {"a whsec_c2hvcnQ=", absl::StatusCode::kInvalidArgument, "at least 16"},
           {"a whsec_c2VjcmV0*LXZhbHVl", absl::StatusCode::kInvalidArgument, "not base64"},
           {"a change-me-please-0123456789", absl::StatusCode::kFailedPrecondition, "placeholder"},
       }) {
    absl::Status status = ParseWebhookSecrets(c.text).status();
    EXPECT_EQ(status.code(), c.code) << c.text << ": " << status;
    EXPECT_TRUE(absl::StrContains(status.message(), c.says)) << c.text << ": " << status;
    EXPECT_FALSE(absl::StrContains(status.message(), "c2VjcmV0")) << status;
    EXPECT_FALSE(absl::StrContains(status.message(), "change-me-please")) << status;
  }
  std::string many;
  for (int i = 0; i <= static_cast<int>(kMaxSecretsPerTenant); ++i) {
    absl::StrAppend(&many, "a raw-secret-of-enough-bytes-", i, "\n");
  }
  EXPECT_TRUE(absl::StrContains(ParseWebhookSecrets(many).status().message(), "more than"));
}

TEST(WebhookSecretsTest, EmptyTenantIsDefaultAndUnknownTenantIsNamed) {
  WebhookSecretsFile file(absl::StrCat("default ", kDefault, "\nacme ", kAcme1, "\n"));
  auto secrets = WebhookSecrets::Load(file.path());
  ASSERT_TRUE(secrets.ok()) << secrets.status();
  EXPECT_EQ(*(*secrets)->KeysFor(""), std::vector<std::string>{Key(kDefault)});
  EXPECT_EQ(*(*secrets)->KeysFor("acme"), std::vector<std::string>{Key(kAcme1)});
  absl::Status missing = (*secrets)->KeysFor("bravo").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(missing.message(), "tenant \"bravo\"")) << missing;
  EXPECT_EQ(ErrorReason(missing), kReasonNoTenantSecret);
}

TEST(WebhookSecretsTest, DirectCallsNeedADefaultLine) {
  WebhookSecretsFile file(absl::StrCat("acme ", kAcme1, "\n"));
  auto secrets = WebhookSecrets::Load(file.path());
  ASSERT_TRUE(secrets.ok());
  absl::Status missing = (*secrets)->KeysFor("").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(missing.message(), "tenant \"default\"")) << missing;
}

TEST(WebhookSecretsTest, PicksUpAChangedFileAndKeepsTheOldOnAnInvalidOne) {
  WebhookSecretsFile file(absl::StrCat("acme ", kAcme1, "\n"));
  auto secrets = WebhookSecrets::Load(file.path());
  ASSERT_TRUE(secrets.ok());
  // Rotation: the new secret joins the old one.
  file.Replace(absl::StrCat("acme ", kAcme1, "\nacme ", kAcme2, "\n"));
  EXPECT_EQ(*(*secrets)->KeysFor("acme"), (std::vector<std::string>{Key(kAcme1), Key(kAcme2)}));
  // A broken edit is ignored: the last good secrets stay.
  file.Replace("acme\n");
  EXPECT_EQ(*(*secrets)->KeysFor("acme"), (std::vector<std::string>{Key(kAcme1), Key(kAcme2)}));
  // The old one retired.
  file.Replace(absl::StrCat("acme ", kAcme2, "\n"));
  EXPECT_EQ(*(*secrets)->KeysFor("acme"), std::vector<std::string>{Key(kAcme2)});
}

TEST(WebhookSecretsTest, LoadNamesTheFile) {
  auto missing = WebhookSecrets::Load("/nonexistent/webhook-secrets");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "/nonexistent/webhook-secrets"));
  WebhookSecretsFile bad("acme\n");
  auto malformed = WebhookSecrets::Load(bad.path());
  EXPECT_TRUE(absl::StrContains(malformed.status().message(), bad.path())) << malformed.status();
}

}  // namespace
}  // namespace conveyor::stages::webhook
