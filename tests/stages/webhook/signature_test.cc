// The reference receiver's check (VerifyWebhook) against the Standard
// Webhooks test vector, and the multi-signature header of a rotation.
#include "stages/webhook/signature.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace conveyor::stages::webhook {
namespace {

// The specification's test vector.
constexpr char kVectorSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr char kVectorId[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kVectorTimestamp = 1614265330;
constexpr char kVectorBody[] = R"({"test": 2432232314})";
constexpr char kVectorSignature[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
constexpr char kOtherSecret[] = "whsec_dGVzdC1vbmx5LXdlYmhvb2sta2V5LXRlbmFudC1icmF2bw==";

const absl::Time kVectorTime = absl::FromUnixSeconds(kVectorTimestamp);

WebhookHeaders VectorHeaders(std::string signature = kVectorSignature) {
  return {kVectorId, std::to_string(kVectorTimestamp), std::move(signature)};
}

TEST(VerifyWebhookTest, AcceptsTheTestVector) {
  const std::string secrets[] = {kVectorSecret};
  EXPECT_TRUE(
      VerifyWebhook(secrets, VectorHeaders(), kVectorBody, absl::Minutes(5), kVectorTime).ok());
}

TEST(VerifyWebhookTest, RefusesAChangedBodyIdOrSecret) {
  const std::string secrets[] = {kVectorSecret};
  EXPECT_EQ(VerifyWebhook(secrets, VectorHeaders(), R"({"test": 1})", absl::Minutes(5), kVectorTime)
                .code(),
            absl::StatusCode::kUnauthenticated);
  WebhookHeaders other_id = VectorHeaders();
  other_id.id = "msg_other";
  EXPECT_EQ(VerifyWebhook(secrets, other_id, kVectorBody, absl::Minutes(5), kVectorTime).code(),
            absl::StatusCode::kUnauthenticated);
  const std::string wrong[] = {kOtherSecret};
  absl::Status refused =
      VerifyWebhook(wrong, VectorHeaders(), kVectorBody, absl::Minutes(5), kVectorTime);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(absl::StrContains(refused.message(), "whsec_")) << refused;
}

TEST(VerifyWebhookTest, RefusesTimestampsOutsideTheTolerance) {
  const std::string secrets[] = {kVectorSecret};
  for (absl::Duration off : {absl::Minutes(6), -absl::Minutes(6)}) {
    EXPECT_EQ(
        VerifyWebhook(secrets, VectorHeaders(), kVectorBody, absl::Minutes(5), kVectorTime + off)
            .code(),
        absl::StatusCode::kUnauthenticated);
  }
  EXPECT_TRUE(VerifyWebhook(secrets, VectorHeaders(), kVectorBody, absl::Minutes(5),
                            kVectorTime + absl::Minutes(4))
                  .ok());
  WebhookHeaders not_a_number = VectorHeaders();
  not_a_number.timestamp = "soon";
  EXPECT_EQ(VerifyWebhook(secrets, not_a_number, kVectorBody, absl::Minutes(5), kVectorTime).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(VerifyWebhookTest, RefusesMissingHeaders) {
  const std::string secrets[] = {kVectorSecret};
  EXPECT_EQ(
      VerifyWebhook(secrets, VectorHeaders(""), kVectorBody, absl::Minutes(5), kVectorTime).code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(VerifyWebhookTest, AnySignatureOfTheHeaderMayMatchAnySecret) {
  auto vector_key = ParseWebhookSecret(kVectorSecret);
  auto other_key = ParseWebhookSecret(kOtherSecret);
  ASSERT_TRUE(vector_key.ok() && other_key.ok());
  const std::string keys[] = {*other_key, *vector_key};
  const std::string header = SignWebhookWithAll(keys, kVectorId, kVectorTimestamp, kVectorBody);
  // One signature per key, space-separated, in key order.
  EXPECT_EQ(header, absl::StrCat(SignWebhook(*other_key, kVectorId, kVectorTimestamp, kVectorBody),
                                 " ", kVectorSignature));
  const std::string only_vector[] = {kVectorSecret};
  const std::string only_other[] = {kOtherSecret};
  const std::string both[] = {"whsec_not*base64", kOtherSecret, kVectorSecret};
  for (absl::Span<const std::string> secrets :
       {absl::MakeConstSpan(only_vector), absl::MakeConstSpan(only_other),
        absl::MakeConstSpan(both)}) {
    EXPECT_TRUE(
        VerifyWebhook(secrets, VectorHeaders(header), kVectorBody, absl::Minutes(5), kVectorTime)
            .ok());
  }
  // Signatures of other schemes and garbage are skipped, not fatal.
  EXPECT_TRUE(VerifyWebhook(only_vector,
                            VectorHeaders(absl::StrCat("v1a,xyz v1,!!! ", kVectorSignature)),
                            kVectorBody, absl::Minutes(5), kVectorTime)
                  .ok());
}

}  // namespace
}  // namespace conveyor::stages::webhook
