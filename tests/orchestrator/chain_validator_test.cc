#include "orchestrator/chain_validator.h"

#include <gtest/gtest.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "tests/testing/bad_request_field.h"

namespace conveyor::orchestrator {
namespace {

using conveyor::v1::ChainSpec;

ChainSpec Valid() {
  ChainSpec spec;
  spec.add_steps()->mutable_download()->set_url("https://example.com/a.jpg");
  spec.add_steps()->mutable_resize()->set_width(100);
  spec.add_steps()->mutable_upload()->set_destination("file:///out");
  spec.add_steps()->mutable_webhook()->set_url("https://example.com/hook");
  return spec;
}

void ExpectInvalid(const ChainSpec& spec, bool inline_source, const std::string& field_prefix) {
  absl::Status s = ValidateChainSpec(spec, inline_source);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.message().substr(0, field_prefix.size()), field_prefix) << s;
}

TEST(ChainValidatorTest, AcceptsTypedChains) {
  EXPECT_TRUE(ValidateChainSpec(Valid(), false).ok());
  ChainSpec inline_spec;
  inline_spec.add_steps()->mutable_filter()->add_ops()->mutable_sepia();
  inline_spec.add_steps()->mutable_webhook()->set_url("http://127.0.0.1:1/h");
  inline_spec.add_steps()->mutable_resize()->set_height(10);  // webhook passes the image on
  EXPECT_TRUE(ValidateChainSpec(inline_spec, true).ok());
}

TEST(ChainValidatorTest, ResizeAfterUploadNamesStepAndProducer) {
  ChainSpec spec = Valid();
  spec.mutable_steps(3)->mutable_resize()->set_width(5);
  absl::Status s = ValidateChainSpec(spec, false);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "spec.steps[3].resize: needs an image but step 2 (upload) produces a stored object");
}

TEST(ChainValidatorTest, UploadAfterWebhookAfterUploadIsRejected) {
  ChainSpec spec = Valid();
  spec.add_steps()->mutable_upload()->set_destination("file:///x");
  ExpectInvalid(spec, false, "spec.steps[4].upload: needs an image but step 2 (upload)");
}

TEST(ChainValidatorTest, FirstStepMustDownloadWithoutInlineSource) {
  ChainSpec spec;
  spec.add_steps()->mutable_resize()->set_width(5);
  ExpectInvalid(spec, false, "spec.steps[0].resize: needs an image");
  ChainSpec hook;
  hook.add_steps()->mutable_webhook()->set_url("https://x/y");
  ExpectInvalid(hook, false, "spec.steps[0].webhook");
}

TEST(ChainValidatorTest, InlineSourceWithDownloadIsRejected) {
  ExpectInvalid(Valid(), true, "spec.steps[0].download: the source image came with the request");
}

TEST(ChainValidatorTest, DownloadOnlyFirst) {
  ChainSpec spec = Valid();
  spec.mutable_steps(1)->mutable_download()->set_url("https://example.com/b.jpg");
  ExpectInvalid(spec, false, "spec.steps[1].download: download can only be the first step");
}

TEST(ChainValidatorTest, StepCountLimits) {
  ExpectInvalid(ChainSpec(), false, "spec.steps: want 1..16 steps, got 0");
  ChainSpec spec = Valid();
  while (spec.steps_size() < 17) spec.add_steps()->mutable_webhook()->set_url("https://x/y");
  ExpectInvalid(spec, false, "spec.steps: want 1..16 steps, got 17");
}

TEST(ChainValidatorTest, StepWithoutKind) {
  ChainSpec spec = Valid();
  spec.add_steps();
  ExpectInvalid(spec, false, "spec.steps[4]: set one of");
}

TEST(ChainValidatorTest, StepSpecFields) {
  ChainSpec a = Valid();
  a.mutable_steps(0)->mutable_download()->set_url("ftp://example.com/a.jpg");
  ExpectInvalid(a, false, "spec.steps[0].download.url");
  ChainSpec b = Valid();
  b.mutable_steps(1)->mutable_resize()->set_width(-3);
  ExpectInvalid(b, false, "spec.steps[1].resize.width: want 0..16384, got -3");
  ChainSpec c = Valid();
  c.mutable_steps(1)->mutable_resize()->set_width(0);
  ExpectInvalid(c, false, "spec.steps[1].resize.width");
  ChainSpec d = Valid();
  d.mutable_steps(2)->mutable_upload()->set_destination("/tmp/x");
  ExpectInvalid(d, false, "spec.steps[2].upload.destination");
  ChainSpec e = Valid();
  e.mutable_steps(3)->mutable_webhook()->set_url("");
  ExpectInvalid(e, false, "spec.steps[3].webhook.url");
  ChainSpec f = Valid();
  f.mutable_steps(1)->mutable_resize()->mutable_output()->set_quality(101);
  ExpectInvalid(f, false, "spec.steps[1].resize.output.quality");
  ChainSpec g = Valid();
  g.mutable_steps(1)->mutable_filter();
  ExpectInvalid(g, false, "spec.steps[1].filter.ops: want 1..32 ops, got 0");
}

TEST(ChainValidatorTest, RetryAndTimeoutBounds) {
  ChainSpec a = Valid();
  a.mutable_steps(1)->mutable_retry()->set_max_attempts(21);
  ExpectInvalid(a, false, "spec.steps[1].retry.max_attempts: want 1..20");
  ChainSpec b = Valid();
  b.mutable_steps(1)->mutable_retry()->set_backoff_multiplier(0.5);
  ExpectInvalid(b, false, "spec.steps[1].retry.backoff_multiplier");
  ChainSpec c = Valid();
  c.mutable_steps(1)->mutable_retry()->set_jitter(1.5);
  ExpectInvalid(c, false, "spec.steps[1].retry.jitter");
  ChainSpec d = Valid();
  d.mutable_steps(1)->mutable_timeout()->set_seconds(3601);
  ExpectInvalid(d, false, "spec.steps[1].timeout");
  ChainSpec e = Valid();
  e.mutable_steps(1)->mutable_retry()->mutable_max_backoff()->set_seconds(-1);
  ExpectInvalid(e, false, "spec.steps[1].retry.max_backoff");
  ChainSpec f = Valid();
  f.mutable_timeout()->set_seconds(-5);
  ExpectInvalid(f, false, "spec.timeout");
  ChainSpec g = Valid();
  g.mutable_steps(0)->mutable_retry()->add_retryable_codes(google::rpc::OK);
  ExpectInvalid(g, false, "spec.steps[0].retry.retryable_codes[0]");
}

TEST(ChainValidatorTest, Labels) {
  ChainSpec a = Valid();
  (*a.mutable_labels())["Bad Key"] = "v";
  ExpectInvalid(a, false, "spec.labels[Bad Key]");
  ChainSpec b = Valid();
  (*b.mutable_labels())["ok"] = std::string(256, 'x');
  ExpectInvalid(b, false, "spec.labels[ok]");
  ChainSpec c = Valid();
  for (int i = 0; i < 33; ++i) (*c.mutable_labels())["k" + std::to_string(i)] = "v";
  ExpectInvalid(c, false, "spec.labels: want at most 32");
}

TEST(ChainValidatorTest, IdempotencyKey) {
  EXPECT_TRUE(ValidateIdempotencyKey("order-42").ok());
  EXPECT_EQ(ValidateIdempotencyKey(std::string(129, 'k')).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateIdempotencyKey("a|b").code(), absl::StatusCode::kInvalidArgument);
}

using conveyor::testing::BadRequestField;

// INVALID_ARGUMENT naming `field` in the message and the BadRequest, small,
// and without `value` in it.
void ExpectRefusedWithoutEcho(const ChainSpec& spec, const std::string& field,
                              const std::string& value) {
  absl::Status s = ValidateChainSpec(spec, false);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(BadRequestField(s), field) << s;
  EXPECT_EQ(s.message().substr(0, field.size() + 1), field + ":") << s;
  EXPECT_LT(s.message().size(), 200u) << s;
  EXPECT_EQ(std::string(s.message()).find(value.substr(0, 40)), std::string::npos) << s;
}

TEST(ChainValidatorTest, UrlsAtTheLimitAreAcceptedAndOverItRefusedBySize) {
  const std::string base = "https://example.com/";
  ChainSpec ok = Valid();
  ok.mutable_steps(0)->mutable_download()->set_url(base +
                                                   std::string(kMaxUrlBytes - base.size(), 'a'));
  ok.mutable_steps(3)->mutable_webhook()->set_url(base +
                                                  std::string(kMaxUrlBytes - base.size(), 'b'));
  EXPECT_TRUE(ValidateChainSpec(ok, false).ok());

  const std::string huge = base + std::string(8 << 20, 'a');
  ChainSpec a = Valid();
  a.mutable_steps(0)->mutable_download()->set_url(huge);
  ExpectRefusedWithoutEcho(a, "spec.steps[0].download.url", std::string(100, 'a'));
  absl::Status s = ValidateChainSpec(a, false);
  EXPECT_EQ(s.message(), absl::StrCat("spec.steps[0].download.url: ", huge.size(),
                                      " bytes is over the limit of 8192 bytes"));
  ChainSpec b = Valid();
  b.mutable_steps(3)->mutable_webhook()->set_url(base + std::string(kMaxUrlBytes, 'b'));
  ExpectRefusedWithoutEcho(b, "spec.steps[3].webhook.url", std::string(100, 'b'));
}

TEST(ChainValidatorTest, UploadDestinationAndKeyTemplateLimits) {
  ChainSpec ok = Valid();
  ok.mutable_steps(2)->mutable_upload()->set_destination("file:///" + std::string(1016, 'd'));
  ok.mutable_steps(2)->mutable_upload()->set_key_template(std::string(1024, 'k'));
  EXPECT_TRUE(ValidateChainSpec(ok, false).ok());
  ChainSpec a = Valid();
  a.mutable_steps(2)->mutable_upload()->set_destination("file:///" + std::string(1017, 'd'));
  ExpectRefusedWithoutEcho(a, "spec.steps[2].upload.destination", std::string(100, 'd'));
  ChainSpec b = Valid();
  b.mutable_steps(2)->mutable_upload()->set_key_template(std::string(1025, 'k'));
  ExpectRefusedWithoutEcho(b, "spec.steps[2].upload.key_template", std::string(100, 'k'));
  ChainSpec c = Valid();
  c.mutable_steps(2)->mutable_upload()->set_key_template("a\r\nX-Injected: yes");
  ExpectInvalid(c, false, "spec.steps[2].upload.key_template: byte 1 is a control character");
  ChainSpec d = Valid();
  d.mutable_steps(2)->mutable_upload()->set_destination("/" + std::string(500, 'x'));
  absl::Status s = ValidateChainSpec(d, false);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(s.message().size(), 200u) << s;  // a short preview, not 500 bytes
}

TEST(ChainValidatorTest, UrlControlCharactersAndSchemesAreRefusedWithoutCredentials) {
  ChainSpec a = Valid();
  a.mutable_steps(0)->mutable_download()->set_url("https://example.com/a\r\nHost: evil");
  ExpectInvalid(a, false, "spec.steps[0].download.url: byte 21 is a control character");
  ChainSpec b = Valid();
  b.mutable_steps(0)->mutable_download()->set_url("ftp://user:s3cret@example.com/a.jpg");
  absl::Status s = ValidateChainSpec(b, false);
  EXPECT_EQ(s.message(),
            "spec.steps[0].download.url: want an http:// or https:// URL, got scheme \"ftp\"");
  ChainSpec c = Valid();
  c.mutable_steps(3)->mutable_webhook()->set_url("user:s3cret@example.com");
  ExpectRefusedWithoutEcho(c, "spec.steps[3].webhook.url", "s3cret");
}

TEST(ChainValidatorTest, LongLabelKeysAreReportedBySize) {
  ChainSpec a = Valid();
  (*a.mutable_labels())[std::string(1 << 20, 'k')] = "v";
  absl::Status s = ValidateChainSpec(a, false);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "spec.labels: a key of 1048576 bytes; keys are 1..63 chars of [a-z0-9_.-]");
  ChainSpec b = Valid();
  (*b.mutable_labels())["team"] = "a\nb";
  ExpectInvalid(b, false, "spec.labels[team]: byte 1 is a control character");
  ChainSpec c = Valid();
  (*c.mutable_labels())[std::string(63, 'k')] = std::string(255, 'v');
  EXPECT_TRUE(ValidateChainSpec(c, false).ok());
}

TEST(ChainValidatorTest, RetryableCodesAreBounded) {
  ChainSpec a = Valid();
  for (int i = 0; i < 17; ++i)
    a.mutable_steps(1)->mutable_retry()->add_retryable_codes(google::rpc::UNAVAILABLE);
  ExpectInvalid(a, false, "spec.steps[1].retry.retryable_codes: want at most 16 codes, got 17");
}

TEST(ChainValidatorTest, LargestLegalSpecIsUnderTheSpecLimit) {
  ChainSpec spec;
  spec.add_steps()->mutable_download()->set_url("https://x/" + std::string(kMaxUrlBytes - 10, 'u'));
  while (spec.steps_size() < kMaxSteps) {
    spec.add_steps()->mutable_webhook()->set_url("https://x/" +
                                                 std::string(kMaxUrlBytes - 10, 'w'));
    for (int i = 0; i < kMaxRetryableCodes; ++i) {
      spec.mutable_steps(spec.steps_size() - 1)
          ->mutable_retry()
          ->add_retryable_codes(google::rpc::ABORTED);
    }
  }
  for (int i = 0; i < kMaxLabels; ++i) {
    (*spec.mutable_labels())[absl::StrCat(i, std::string(60, 'k'))] = std::string(255, 'v');
  }
  EXPECT_TRUE(ValidateChainSpec(spec, false).ok()) << ValidateChainSpec(spec, false);
  EXPECT_LT(spec.ByteSizeLong(), kMaxSpecBytes);
}

TEST(ChainValidatorTest, Timestamps) {
  google::protobuf::Timestamp t;
  t.set_seconds(1767225600);
  EXPECT_TRUE(ValidateTimestamp("create_time_after", t).ok());
  t.set_seconds(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(ValidateTimestamp("create_time_after", t).code(), absl::StatusCode::kInvalidArgument);
  t.set_seconds(0);
  t.set_nanos(-1);
  EXPECT_EQ(ValidateTimestamp("create_time_after", t).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChainValidatorTest, PreviewCutsAndEscapes) {
  EXPECT_EQ(Preview("a\nb"), "a\\nb");
  EXPECT_EQ(Preview(std::string(100, 'x'), 4), "xxxx... (100 bytes)");
}

}  // namespace
}  // namespace conveyor::orchestrator
