// Webhook logic without gRPC or network: signature, secret, delivery id,
// body shape and the status table.
#include "stages/webhook/webhook.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "common/status_details.h"
#include "stages/webhook/signature.h"

namespace conveyor::stages::webhook {
namespace {

constexpr char kVectorSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

TEST(SignatureTest, MatchesStandardWebhooksTestVector) {
  // The vector the Standard Webhooks / Svix reference libraries test against.
  auto key = ParseWebhookSecret(kVectorSecret);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(
      SignWebhook(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(SignatureTest, AnyChangedInputChangesTheSignature) {
  auto key = ParseWebhookSecret(kVectorSecret);
  ASSERT_TRUE(key.ok());
  const std::string reference = SignWebhook(*key, "msg_1", 1614265330, "{}");
  EXPECT_NE(SignWebhook(*key, "msg_2", 1614265330, "{}"), reference);
  EXPECT_NE(SignWebhook(*key, "msg_1", 1614265331, "{}"), reference);
  EXPECT_NE(SignWebhook(*key, "msg_1", 1614265330, "{ }"), reference);
  EXPECT_NE(SignWebhook("other key", "msg_1", 1614265330, "{}"), reference);
}

TEST(ParseWebhookSecretTest, DecodesWhsecAndAcceptsRaw) {
  auto key = ParseWebhookSecret("whsec_aGVsbG8=");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(*key, "hello");
  auto raw = ParseWebhookSecret("plain-text-key");
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(*raw, "plain-text-key");
}

TEST(ParseWebhookSecretTest, RefusesEmptyAndBadBase64WithoutEchoingIt) {
  EXPECT_EQ(ParseWebhookSecret("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseWebhookSecret("whsec_").status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status bad = ParseWebhookSecret("whsec_not*base64!").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message().find("not*base64"), absl::string_view::npos) << bad;
}

TEST(DeliveryIdTest, DependsOnChainAndStepOnly) {
  v1::StepContext first;
  first.set_chain("chains/7f3a");
  first.set_step_index(4);
  first.set_attempt(1);
  v1::StepContext retry = first;
  retry.set_attempt(3);
  EXPECT_EQ(DeliveryId(first), "msg_7f3a_4");
  EXPECT_EQ(DeliveryId(retry), "msg_7f3a_4");
  v1::StepContext other_step = first;
  other_step.set_step_index(5);
  EXPECT_NE(DeliveryId(other_step), DeliveryId(first));
}

TEST(DeliveryIdTest, WithoutChainIsUniquePerCall) {
  v1::StepContext none;
  const std::string a = DeliveryId(none);
  const std::string b = DeliveryId(none);
  EXPECT_TRUE(absl::StartsWith(a, "msg_adhoc_")) << a;
  EXPECT_EQ(a.size(), std::string("msg_adhoc_").size() + 32);
  EXPECT_NE(a, b);
}

TEST(BuildWebhookBodyTest, IsTheEnvelopeWithTheReportAsData) {
  v1::ChainReport report;
  report.set_chain("chains/7f3a");
  (*report.mutable_labels())["team"] = "photos";
  auto* image = report.add_outputs()->mutable_image();
  image->set_media_type("image/jpeg");
  image->set_width(800);
  image->set_height(600);
  image->set_size_bytes(81234);
  auto* stored = report.add_outputs()->mutable_stored_object();
  stored->set_uri("file:///srv/out/7f3a-1.jpg");
  stored->set_sha256("ab12");

  auto body = BuildWebhookBody(report, absl::FromUnixMillis(1614265330123));
  ASSERT_TRUE(body.ok()) << body.status();

  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*body, &parsed).ok()) << *body;
  const auto& fields = parsed.fields();
  ASSERT_EQ(fields.size(), 3u) << *body;
  EXPECT_EQ(fields.at("type").string_value(), "chain.report");
  EXPECT_EQ(fields.at("timestamp").string_value(), "2021-02-25T15:02:10.123Z");
  ASSERT_TRUE(fields.at("data").has_struct_value());
  // Proto3 JSON names.
  EXPECT_EQ(fields.at("data").struct_value().fields().at("chain").string_value(), "chains/7f3a");

  // "data" is exactly the report in proto3 JSON.
  std::string data_json;
  ASSERT_TRUE(
      google::protobuf::util::MessageToJsonString(fields.at("data").struct_value(), &data_json)
          .ok());
  v1::ChainReport round_trip;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(data_json, &round_trip).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(round_trip, report))
      << round_trip.DebugString();
  EXPECT_NE(body->find(R"("sizeBytes":"81234")"), std::string::npos) << *body;
}

struct StatusCase {
  int http_status;
  absl::StatusCode expected;
};

class WebhookStatusTest : public ::testing::TestWithParam<StatusCase> {};

TEST_P(WebhookStatusTest, SaysWhetherARetryCanHelp) {
  absl::Status status = WebhookStatusFromHttp(GetParam().http_status, "msg_x_1");
  EXPECT_EQ(status.code(), GetParam().expected) << GetParam().http_status;
  if (!status.ok()) {
    EXPECT_NE(status.message().find(std::to_string(GetParam().http_status)),
              absl::string_view::npos)
        << status;
    EXPECT_EQ(ErrorReason(status), "HTTP_STATUS");
  }
}

INSTANTIATE_TEST_SUITE_P(All, WebhookStatusTest,
                         ::testing::Values(StatusCase{200, absl::StatusCode::kOk},
                                           StatusCase{202, absl::StatusCode::kOk},
                                           StatusCase{204, absl::StatusCode::kOk},
                                           StatusCase{408, absl::StatusCode::kUnavailable},
                                           StatusCase{429, absl::StatusCode::kUnavailable},
                                           StatusCase{500, absl::StatusCode::kUnavailable},
                                           StatusCase{502, absl::StatusCode::kUnavailable},
                                           StatusCase{503, absl::StatusCode::kUnavailable},
                                           StatusCase{400, absl::StatusCode::kFailedPrecondition},
                                           StatusCase{401, absl::StatusCode::kFailedPrecondition},
                                           StatusCase{403, absl::StatusCode::kFailedPrecondition},
                                           StatusCase{404, absl::StatusCode::kFailedPrecondition},
                                           StatusCase{410, absl::StatusCode::kFailedPrecondition},
                                           StatusCase{422, absl::StatusCode::kFailedPrecondition},
                                           StatusCase{301, absl::StatusCode::kFailedPrecondition}));

}  // namespace
}  // namespace conveyor::stages::webhook
