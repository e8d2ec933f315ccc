#include "stages/upload/object_key.h"

#include <gtest/gtest.h>

#include <string>

#include "common/status_details.h"

namespace conveyor::stages::upload {
namespace {

KeyFields Fields() {
  KeyFields fields;
  fields.chain_id = "7f3a";
  fields.step = 2;
  fields.ext = "jpg";
  fields.width = 800;
  fields.height = 600;
  return fields;
}

std::string FieldOf(const absl::Status& status) {
  // InvalidField messages read "<field>: <description>".
  const std::string message(status.message());
  return message.substr(0, message.find(':'));
}

TEST(ObjectKeyTest, EmptyTemplateUsesDefault) {
  absl::StatusOr<std::string> key = ExpandKeyTemplate("", Fields());
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "7f3a-2.jpg");
}

TEST(ObjectKeyTest, ExpandsEveryPlaceholder) {
  absl::StatusOr<std::string> key =
      ExpandKeyTemplate("thumbs/{chain_id}/{step}_{width}x{height}.{ext}", Fields());
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "thumbs/7f3a/2_800x600.jpg");
}

TEST(ObjectKeyTest, RepeatedPlaceholderAndLiteralText) {
  absl::StatusOr<std::string> key = ExpandKeyTemplate("a-{step}-{step}.{ext}", Fields());
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "a-2-2.jpg");
}

TEST(ObjectKeyTest, SameChainAndStepGiveSameKeyWhateverTheAttempt) {
  // The attempt is not a placeholder: a retry must land on the same object.
  EXPECT_EQ(*ExpandKeyTemplate("", Fields()), *ExpandKeyTemplate("", Fields()));
  absl::StatusOr<std::string> key = ExpandKeyTemplate("{attempt}", Fields());
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ObjectKeyTest, UnknownPlaceholderIsInvalidAndNamesTheField) {
  absl::StatusOr<std::string> key = ExpandKeyTemplate("{chain}-{step}", Fields());
  ASSERT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(key.status()), "spec.key_template");
  EXPECT_NE(key.status().message().find("{chain}"), absl::string_view::npos);
}

TEST(ObjectKeyTest, UnbalancedBracesAreInvalid) {
  for (const char* bad : {"{step", "step}", "{{step}}", "a{st{ep}", "}{", "{}"}) {
    absl::StatusOr<std::string> key = ExpandKeyTemplate(bad, Fields());
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(FieldOf(key.status()), "spec.key_template") << bad;
  }
}

TEST(ObjectKeyTest, KeysMayHaveSubdirectories) {
  EXPECT_TRUE(ValidateObjectKey("a/b/c.jpg", "f").ok());
  EXPECT_TRUE(ValidateObjectKey("a../b..c/d...", "f").ok());
  // Dot-leading segments are not: ".ssh", ".htaccess", "..a".
  EXPECT_FALSE(ValidateObjectKey("..a/b", "f").ok());
}

TEST(ObjectKeyTest, RejectsTraversalAbsoluteEmptyAndControlCharacters) {
  const std::string with_nul("a\0b", 3);
  for (const std::string& bad :
       {std::string("../x"), std::string("a/../x"), std::string("a/.."), std::string(".."),
        std::string("./x"), std::string("/etc/passwd"), std::string("a//b"), std::string("a/"),
        std::string(""), with_nul, std::string("a\nb"), std::string("a\x7f"),
        std::string(kMaxKeyBytes + 1, 'k')}) {
    absl::Status status = ValidateObjectKey(bad, "spec.key_template");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(FieldOf(status), "spec.key_template") << bad;
  }
}

TEST(ObjectKeyTest, TemplateProducingTraversalIsInvalid) {
  for (const char* bad : {"../{chain_id}.{ext}", "/{chain_id}", "a/../../b", "{chain_id}/"}) {
    absl::StatusOr<std::string> key = ExpandKeyTemplate(bad, Fields());
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(FieldOf(key.status()), "spec.key_template") << bad;
  }
}

TEST(ObjectKeyTest, ChainIdComesFromTheChainName) {
  conveyor::v1::StepContext context;
  context.set_chain("chains/7f3a");
  absl::StatusOr<std::string> id = ChainIdOf(context, "abcdef");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "7f3a");
}

TEST(ObjectKeyTest, DirectCallUsesDigestPrefix) {
  conveyor::v1::StepContext context;
  absl::StatusOr<std::string> id =
      ChainIdOf(context, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "direct-ba7816bf8f01cfea");
}

TEST(ObjectKeyTest, MalformedChainNameIsInvalid) {
  for (const char* bad :
       {"7f3a", "chains/", "chains/a/b", "chain/7f3a", "chains/..", "chains/a\tb"}) {
    conveyor::v1::StepContext context;
    context.set_chain(bad);
    absl::StatusOr<std::string> id = ChainIdOf(context, "ab");
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(FieldOf(id.status()), "context.chain") << bad;
  }
}

TEST(ObjectKeyTest, OnlyTheSafeCharacterSetIsAccepted) {
  EXPECT_TRUE(ValidateObjectKey("a/B-c_d.e=f/9.png", "k").ok());
  for (const char* bad : {"a b.png", "a%2e.png", "a\\b.png", "a?b.png", "a#b.png", "a:b.png",
                          "caf\xc3\xa9.png", "a*b.png", "a~b.png"}) {
    absl::Status status = ValidateObjectKey(bad, "spec.key_template");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(ErrorReason(status), "UNSAFE_OBJECT_KEY") << bad;
  }
}

TEST(ObjectKeyTest, DotLeadingSegmentsAreRefused) {
  for (const char* bad : {".ssh/authorized_keys.png", "a/.htaccess.png", ".png", "a/..b/c.png"}) {
    absl::Status status = ValidateObjectKey(bad, "spec.key_template");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(ErrorReason(status), "UNSAFE_OBJECT_KEY") << bad;
  }
  KeyFields fields = Fields();
  fields.ext = "png";
  EXPECT_EQ(ExpandKeyTemplate(".ssh/{chain_id}.{ext}", fields).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ObjectKeyTest, ExtensionMustBeTheImagesOwn) {
  KeyFields fields = Fields();
  fields.ext = "png";
  for (const char* bad : {"index.html", "{chain_id}.jpg", "{chain_id}", "{chain_id}.png.html",
                          "{chain_id}png"}) {
    absl::StatusOr<std::string> key = ExpandKeyTemplate(bad, fields);
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(ErrorReason(key.status()), "WRONG_EXTENSION") << bad << " " << key.status();
  }
  EXPECT_TRUE(ExpandKeyTemplate("x/{chain_id}.{ext}", fields).ok());
  EXPECT_TRUE(ExpandKeyTemplate("x/{chain_id}.png", fields).ok());
}

TEST(ObjectKeyTest, OverLongTemplateIsFieldTooLong) {
  absl::StatusOr<std::string> key = ExpandKeyTemplate(std::string(1025, 'a'), Fields());
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(key.status()), "FIELD_TOO_LONG");
  EXPECT_LT(key.status().message().size(), 200u);
}

TEST(ObjectKeyTest, WriteOriginNamesChainAndStep) {
  conveyor::v1::StepContext context;
  context.set_chain("chains/7f3a");
  context.set_step_index(4);
  context.set_attempt(2);
  EXPECT_EQ(WriteOriginOf(context), "chains/7f3a/steps/4");
  EXPECT_EQ(WriteOriginOf(conveyor::v1::StepContext()), "");
}

}  // namespace
}  // namespace conveyor::stages::upload
