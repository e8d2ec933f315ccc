#include "client/chain_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"

namespace conveyor::client {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

ChainFlags UrlFlags() {
  ChainFlags flags;
  flags.steps.url = "http://127.0.0.1:8000/photo.jpg";
  return flags;
}

// Asserts INVALID_ARGUMENT whose message starts with `flag` and contains `detail`.
void ExpectFlagError(const absl::Status& status, const std::string& flag,
                     const std::string& detail) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), StartsWith(flag + ": "));
  EXPECT_THAT(std::string(status.message()), HasSubstr(detail));
}

TEST(ChainBuilderTest, FullFiveStepChainInFixedOrder) {
  ChainFlags flags = UrlFlags();
  flags.steps.resize = "800x600";
  flags.steps.fit = "cover";
  flags.steps.fast = true;
  flags.steps.filters = {"grayscale", "blur:sigma=2"};
  flags.steps.format = "webp";
  flags.steps.quality = 70;
  flags.steps.upload = "file:///tmp/out";
  flags.steps.key_template = "{chain_id}.{ext}";
  flags.steps.webhook = "http://127.0.0.1:9000/hook";
  flags.priority = "high";
  flags.labels = {"team=img", "run=7"};
  flags.idempotency_key = "abc";
  flags.chain_timeout = "2m";
  flags.steps.timeout_per_step = "10s";
  flags.steps.max_attempts = 5;

  absl::StatusOr<v1::SubmitChainRequest> request = BuildSubmitRequest(flags);
  ASSERT_TRUE(request.ok()) << request.status();
  const v1::ChainSpec& spec = request->spec();
  ASSERT_EQ(spec.steps_size(), 5);
  EXPECT_EQ(spec.steps(0).download().url(), "http://127.0.0.1:8000/photo.jpg");
  EXPECT_EQ(spec.steps(1).resize().width(), 800);
  EXPECT_EQ(spec.steps(1).resize().height(), 600);
  EXPECT_EQ(spec.steps(1).resize().fit(), v1::ResizeSpec::COVER);
  EXPECT_EQ(spec.steps(1).resize().shrink_on_load(), v1::ResizeSpec::FAST);
  // The encoding goes to the last image step, the filter.
  EXPECT_FALSE(spec.steps(1).resize().has_output());
  ASSERT_EQ(spec.steps(2).filter().ops_size(), 2);
  EXPECT_TRUE(spec.steps(2).filter().ops(0).has_grayscale());
  EXPECT_DOUBLE_EQ(spec.steps(2).filter().ops(1).gaussian_blur().sigma(), 2.0);
  EXPECT_EQ(spec.steps(2).filter().output().format(), v1::IMAGE_FORMAT_WEBP);
  EXPECT_EQ(spec.steps(2).filter().output().quality(), 70);
  EXPECT_EQ(spec.steps(3).upload().destination(), "file:///tmp/out");
  EXPECT_EQ(spec.steps(3).upload().key_template(), "{chain_id}.{ext}");
  EXPECT_EQ(spec.steps(4).webhook().url(), "http://127.0.0.1:9000/hook");
  EXPECT_EQ(spec.priority(), v1::PRIORITY_HIGH);
  EXPECT_EQ(spec.labels().at("team"), "img");
  EXPECT_EQ(spec.labels().at("run"), "7");
  EXPECT_EQ(spec.timeout().seconds(), 120);
  EXPECT_EQ(request->idempotency_key(), "abc");
  for (const v1::Step& step : spec.steps()) {
    EXPECT_EQ(step.timeout().seconds(), 10);
    EXPECT_EQ(step.retry().max_attempts(), 5);
  }
}

TEST(ChainBuilderTest, FormatGoesToResizeWithoutFilter) {
  ChainFlags flags = UrlFlags();
  flags.steps.resize = "x600";
  flags.steps.format = "png";
  absl::StatusOr<v1::SubmitChainRequest> request = BuildSubmitRequest(flags);
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->spec().steps_size(), 2);
  EXPECT_EQ(request->spec().steps(1).resize().width(), 0);
  EXPECT_EQ(request->spec().steps(1).resize().height(), 600);
  EXPECT_EQ(request->spec().steps(1).resize().output().format(), v1::IMAGE_FORMAT_PNG);
}

TEST(ChainBuilderTest, InlineSourceHasNoDownloadStep) {
  ChainFlags flags;
  flags.steps.inline_source = true;
  flags.steps.resize = "800x";
  absl::StatusOr<v1::SubmitChainRequest> request = BuildSubmitRequest(flags);
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->spec().steps_size(), 1);
  EXPECT_EQ(request->spec().steps(0).resize().width(), 800);
  EXPECT_TRUE(request->source().data().empty());
}

TEST(ChainBuilderTest, FilterOrderIsKept) {
  ChainFlags flags = UrlFlags();
  flags.steps.filters = {"sepia", "invert", "sharpen:amount=1.5,sigma=2",
                         "brightness:brightness=10,contrast=1.2", "edges:low=50,high=150"};
  absl::StatusOr<v1::SubmitChainRequest> request = BuildSubmitRequest(flags);
  ASSERT_TRUE(request.ok()) << request.status();
  const v1::FilterSpec& filter = request->spec().steps(1).filter();
  ASSERT_EQ(filter.ops_size(), 5);
  EXPECT_TRUE(filter.ops(0).has_sepia());
  EXPECT_TRUE(filter.ops(1).has_invert());
  EXPECT_DOUBLE_EQ(filter.ops(2).sharpen().amount(), 1.5);
  EXPECT_DOUBLE_EQ(filter.ops(2).sharpen().sigma(), 2.0);
  EXPECT_DOUBLE_EQ(filter.ops(3).brightness_contrast().brightness(), 10);
  EXPECT_DOUBLE_EQ(filter.ops(3).brightness_contrast().contrast(), 1.2);
  EXPECT_DOUBLE_EQ(filter.ops(4).edge_detect().low_threshold(), 50);
  EXPECT_DOUBLE_EQ(filter.ops(4).edge_detect().high_threshold(), 150);
}

TEST(ChainBuilderTest, ResizeGeometryForms) {
  EXPECT_EQ(ParseResizeGeometry("800x600")->width(), 800);
  EXPECT_EQ(ParseResizeGeometry("800X600")->height(), 600);
  EXPECT_EQ(ParseResizeGeometry("800x")->height(), 0);
  EXPECT_EQ(ParseResizeGeometry("x600")->width(), 0);
}

TEST(ChainBuilderTest, BadResizeGeometryNamesFlagAndValue) {
  for (const char* bad : {"", "x", "800", "800x600x2", "axb", "-5x10", "80 0x1", "800x0"}) {
    ExpectFlagError(ParseResizeGeometry(bad).status(), "--resize", bad);
  }
  ExpectFlagError(ParseResizeGeometry("20000x10").status(), "--resize", "width wants 1..16384");
}

TEST(ChainBuilderTest, BadFilterNamesTheProblem) {
  ExpectFlagError(ParseFilterOp("vignette").status(), "--filter", "unknown filter \"vignette\"");
  ExpectFlagError(ParseFilterOp("blur:radius=2").status(), "--filter",
                  "blur has no parameter \"radius\" (want sigma)");
  ExpectFlagError(ParseFilterOp("blur:sigma=abc").status(), "--filter",
                  "sigma wants a number, got \"abc\"");
  ExpectFlagError(ParseFilterOp("blur:sigma").status(), "--filter", "sigma wants a number");
  ExpectFlagError(ParseFilterOp("sepia:amount=1").status(), "--filter",
                  "sepia takes no parameters");
  ExpectFlagError(ParseFilterOp("blur:sigma=1,sigma=2").status(), "--filter", "given twice");
  ExpectFlagError(ParseFilterOp("brightness").status(), "--filter",
                  "needs brightness and/or contrast");
}

TEST(ChainBuilderTest, BlurDefaultsToSigmaTwo) {
  absl::StatusOr<v1::FilterOp> op = ParseFilterOp("blur");
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_DOUBLE_EQ(op->gaussian_blur().sigma(), 2.0);
}

TEST(ChainBuilderTest, SourceRules) {
  ChainFlags none;
  none.steps.resize = "10x10";
  ExpectFlagError(BuildSubmitRequest(none).status(), "--url", "needs a source");

  ChainFlags both = UrlFlags();
  both.steps.inline_source = true;
  ExpectFlagError(BuildSubmitRequest(both).status(), "--url", "cannot be combined with --file");

  ChainFlags file_only;
  file_only.steps.inline_source = true;
  ExpectFlagError(BuildSubmitRequest(file_only).status(), "--file", "nothing to do");

  ChainFlags ftp;
  ftp.steps.url = "ftp://example/x.jpg";
  ExpectFlagError(BuildSubmitRequest(ftp).status(), "--url", "\"ftp://example/x.jpg\"");
}

TEST(ChainBuilderTest, DependentFlagsNeedTheirStep) {
  ChainFlags fit = UrlFlags();
  fit.steps.fit = "cover";
  ExpectFlagError(BuildSubmitRequest(fit).status(), "--fit", "needs --resize");

  ChainFlags fast = UrlFlags();
  fast.steps.fast = true;
  ExpectFlagError(BuildSubmitRequest(fast).status(), "--fast", "needs --resize");

  ChainFlags format = UrlFlags();
  format.steps.format = "png";
  ExpectFlagError(BuildSubmitRequest(format).status(), "--format", "--resize or --filter");

  ChainFlags key = UrlFlags();
  key.steps.key_template = "{chain_id}";
  ExpectFlagError(BuildSubmitRequest(key).status(), "--key", "needs --upload");

  ChainFlags cover = UrlFlags();
  cover.steps.resize = "800x";
  cover.steps.fit = "cover";
  ExpectFlagError(BuildSubmitRequest(cover).status(), "--fit", "needs both width and height");
}

TEST(ChainBuilderTest, BadEnumAndRangeFlags) {
  ChainFlags fit = UrlFlags();
  fit.steps.resize = "10x10";
  fit.steps.fit = "stretch";
  ExpectFlagError(BuildSubmitRequest(fit).status(), "--fit", "\"stretch\"");

  ChainFlags format = UrlFlags();
  format.steps.resize = "10x10";
  format.steps.format = "gif";
  ExpectFlagError(BuildSubmitRequest(format).status(), "--format", "\"gif\"");

  ChainFlags quality = UrlFlags();
  quality.steps.resize = "10x10";
  quality.steps.quality = 101;
  ExpectFlagError(BuildSubmitRequest(quality).status(), "--quality", "want 1..100, got 101");

  ChainFlags priority = UrlFlags();
  priority.priority = "urgent";
  ExpectFlagError(BuildSubmitRequest(priority).status(), "--priority", "\"urgent\"");

  ChainFlags label = UrlFlags();
  label.labels = {"novalue"};
  ExpectFlagError(BuildSubmitRequest(label).status(), "--label", "want key=value");

  ChainFlags dup = UrlFlags();
  dup.labels = {"a=1", "a=2"};
  ExpectFlagError(BuildSubmitRequest(dup).status(), "--label", "given twice");

  ChainFlags upload = UrlFlags();
  upload.steps.upload = "/tmp/out";
  ExpectFlagError(BuildSubmitRequest(upload).status(), "--upload", "\"/tmp/out\"");

  ChainFlags attempts = UrlFlags();
  attempts.steps.max_attempts = 21;
  ExpectFlagError(BuildSubmitRequest(attempts).status(), "--max-attempts", "want 1..20, got 21");

  ChainFlags timeout = UrlFlags();
  timeout.chain_timeout = "soon";
  ExpectFlagError(BuildSubmitRequest(timeout).status(), "--chain-timeout", "\"soon\"");

  ChainFlags step_timeout = UrlFlags();
  step_timeout.steps.timeout_per_step = "30";
  ExpectFlagError(BuildSubmitRequest(step_timeout).status(), "--timeout-per-step", "\"30\"");
}

TEST(ChainBuilderTest, Durations) {
  EXPECT_EQ(*ParseDurationFlag("--x", "500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDurationFlag("--x", "1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDurationFlag("--x", "2d"), absl::Hours(48));
  EXPECT_EQ(*ParseDurationFlag("--x", "1d12h"), absl::Hours(36));
  for (const char* bad : {"", "0", "0s", "-5s", "5", "d", "xd", "inf", "5 parsecs"}) {
    EXPECT_EQ(ParseDurationFlag("--x", bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(ChainBuilderTest, TimeFlagTakesRfc3339OrAgo) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  EXPECT_EQ(*ParseTimeFlag("--since", "1h", now), now - absl::Hours(1));
  EXPECT_EQ(*ParseTimeFlag("--since", "2026-11-26T10:00:00Z", now),
            absl::FromCivil(absl::CivilSecond(2026, 11, 26, 10, 0, 0), absl::UTCTimeZone()));
  ExpectFlagError(ParseTimeFlag("--since", "yesterday", now).status(), "--since", "\"yesterday\"");
}

TEST(ChainBuilderTest, StateFlag) {
  EXPECT_EQ(*ParseStateFlag("--state", "succeeded"), v1::SUCCEEDED);
  EXPECT_EQ(*ParseStateFlag("--state", "Running"), v1::RUNNING);
  ExpectFlagError(ParseStateFlag("--state", "done").status(), "--state", "\"done\"");
  ExpectFlagError(ParseStateFlag("--state", "state_unspecified").status(), "--state",
                  "want one of");
  ExpectFlagError(
      ParseStateFlag("--state", "running", {v1::SUCCEEDED, v1::FAILED, v1::CANCELLED}).status(),
      "--state", "want one of succeeded, failed, cancelled");
}

TEST(ChainBuilderTest, SpecFileAsChainSpec) {
  ChainFlags flags;
  flags.labels = {"from=flag"};
  flags.priority = "low";
  flags.steps.max_attempts = 2;
  const std::string json = R"({"steps": [
      {"download": {"url": "http://127.0.0.1/a.jpg"}},
      {"resize": {"width": 64, "fit": "COVER", "height": 64}, "retry": {"maxAttempts": 7}}],
    "labels": {"from": "spec", "k": "v"}})";
  absl::StatusOr<v1::SubmitChainRequest> request = BuildSubmitRequestFromSpec(json, flags);
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->spec().steps_size(), 2);
  EXPECT_EQ(request->spec().steps(1).resize().fit(), v1::ResizeSpec::COVER);
  EXPECT_EQ(request->spec().labels().at("from"), "flag");
  EXPECT_EQ(request->spec().labels().at("k"), "v");
  EXPECT_EQ(request->spec().priority(), v1::PRIORITY_LOW);
  // --max-attempts fills only steps without their own policy.
  EXPECT_EQ(request->spec().steps(0).retry().max_attempts(), 2);
  EXPECT_EQ(request->spec().steps(1).retry().max_attempts(), 7);
}

TEST(ChainBuilderTest, SpecFileAsSubmitChainRequest) {
  const std::string json = R"({"spec": {"steps": [{"webhook": {"url": "http://127.0.0.1/h"}}]},
                               "idempotencyKey": "k1"})";
  absl::StatusOr<v1::SubmitChainRequest> request = BuildSubmitRequestFromSpec(json, ChainFlags{});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->idempotency_key(), "k1");
  EXPECT_EQ(request->spec().steps(0).webhook().url(), "http://127.0.0.1/h");
}

TEST(ChainBuilderTest, BadSpecFiles) {
  ExpectFlagError(BuildSubmitRequestFromSpec("{not json", ChainFlags{}).status(), "--spec",
                  "not the JSON form");
  ExpectFlagError(BuildSubmitRequestFromSpec(R"({"stepz": []})", ChainFlags{}).status(), "--spec",
                  "not the JSON form");
  ExpectFlagError(BuildSubmitRequestFromSpec(R"({"steps": []})", ChainFlags{}).status(), "--spec",
                  "no steps");
  ExpectFlagError(
      BuildSubmitRequestFromSpec(R"({"steps": [{"resize": {"fit": "SQUASH"}}]})", ChainFlags{})
          .status(),
      "--spec", "not the JSON form");
  ChainFlags with_step_flag;
  with_step_flag.steps.resize = "10x10";
  ExpectFlagError(BuildSubmitRequestFromSpec(
                      R"({"steps": [{"webhook": {"url": "http://127.0.0.1/h"}}]})", with_step_flag)
                      .status(),
                  "--resize", "cannot be combined with --spec");
}

TEST(ChainBuilderTest, TimestampRoundTrip) {
  const absl::Time t = absl::FromUnixMillis(1'800'000'000'123);
  EXPECT_EQ(FromProtoTimestamp(ToProtoTimestamp(t)), t);
  EXPECT_EQ(FromProtoDuration(ToProtoDuration(absl::Milliseconds(1500))), absl::Milliseconds(1500));
  EXPECT_EQ(ToProtoDuration(absl::Milliseconds(1500)).nanos(), 500'000'000);
}

}  // namespace
}  // namespace conveyor::client

namespace conveyor::client {
namespace {

TEST(ChainBuilderTest, BatchLinesSkipBlanksAndComments) {
  EXPECT_EQ(ParseBatchLines("http://127.0.0.1/a.jpg\n\n  # comment\n  /tmp/b.png  \r\nlast"),
            (std::vector<std::string>{"http://127.0.0.1/a.jpg", "/tmp/b.png", "last"}));
  EXPECT_TRUE(ParseBatchLines("\n# only\n").empty());
  EXPECT_TRUE(IsHttpUrl("https://x/y"));
  EXPECT_FALSE(IsHttpUrl("/tmp/http://x"));
}

}  // namespace
}  // namespace conveyor::client
