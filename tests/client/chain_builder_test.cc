#include "client/chain_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "tests/client/expect_flag_error.h"

namespace conveyor::client {
namespace {

ChainFlags UrlFlags() {
  ChainFlags flags;
  flags.steps.url = "http://127.0.0.1:8000/photo.jpg";
  return flags;
}

// UrlFlags() changed by `set`, for tables of one bad flag each.
ChainFlags UrlFlagsWith(void (*set)(ChainFlags&)) {
  ChainFlags flags = UrlFlags();
  set(flags);
  return flags;
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
  const struct {
    ChainFlags flags;
    const char* flag;
    const char* detail;
  } cases[] = {
      {UrlFlagsWith([](ChainFlags& f) { f.steps.fit = "cover"; }), "--fit", "needs --resize"},
      {UrlFlagsWith([](ChainFlags& f) { f.steps.fast = true; }), "--fast", "needs --resize"},
      {UrlFlagsWith([](ChainFlags& f) { f.steps.format = "png"; }), "--format",
       "--resize or --filter"},
      {UrlFlagsWith([](ChainFlags& f) { f.steps.key_template = "{chain_id}"; }), "--key",
       "needs --upload"},
      {UrlFlagsWith([](ChainFlags& f) {
         f.steps.resize = "800x";
         f.steps.fit = "cover";
       }),
       "--fit", "needs both width and height"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.detail);
    ExpectFlagError(BuildSubmitRequest(c.flags).status(), c.flag, c.detail);
  }
}

TEST(ChainBuilderTest, BadEnumAndRangeFlags) {
  const struct {
    ChainFlags flags;
    const char* flag;
    const char* detail;
  } cases[] = {
      {UrlFlagsWith([](ChainFlags& f) {
         f.steps.resize = "10x10";
         f.steps.fit = "stretch";
       }),
       "--fit", "\"stretch\""},
      {UrlFlagsWith([](ChainFlags& f) {
         f.steps.resize = "10x10";
         f.steps.format = "gif";
       }),
       "--format", "\"gif\""},
      {UrlFlagsWith([](ChainFlags& f) {
         f.steps.resize = "10x10";
         f.steps.quality = 101;
       }),
       "--quality", "want 1..100, got 101"},
      {UrlFlagsWith([](ChainFlags& f) { f.priority = "urgent"; }), "--priority", "\"urgent\""},
      {UrlFlagsWith([](ChainFlags& f) { f.labels = {"novalue"}; }), "--label", "want key=value"},
      {UrlFlagsWith([](ChainFlags& f) {
         f.labels = {"a=1", "a=2"};
       }),
       "--label", "given twice"},
      {UrlFlagsWith([](ChainFlags& f) { f.steps.upload = "/tmp/out"; }), "--upload",
       "\"/tmp/out\""},
      {UrlFlagsWith([](ChainFlags& f) { f.steps.max_attempts = 21; }), "--max-attempts",
       "want 1..20, got 21"},
      {UrlFlagsWith([](ChainFlags& f) { f.chain_timeout = "soon"; }), "--chain-timeout",
       "\"soon\""},
      {UrlFlagsWith([](ChainFlags& f) { f.steps.timeout_per_step = "30"; }), "--timeout-per-step",
       "\"30\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.detail);
    ExpectFlagError(BuildSubmitRequest(c.flags).status(), c.flag, c.detail);
  }
}

TEST(ChainBuilderTest, StepsPassTheirStagesSpecCheckNamingTheFlag) {
  // Rules the flags do not spell out come from common/step_specs.h, the
  // ones the orchestrator applies.
  const auto with = [](void (*set)(StepFlags&)) {
    ChainFlags flags = UrlFlags();
    set(flags.steps);
    return flags;
  };
  const struct {
    ChainFlags flags;
    const char* flag;
    const char* detail;
  } cases[] = {
      {with([](StepFlags& s) { s.url += std::string(9000, 'a'); }), "--url",
       "over the limit of 8192 bytes"},
      {with([](StepFlags& s) { s.upload = "s3://"; }), "--upload", "want file:///dir"},
      {with([](StepFlags& s) {
         s.upload = "file:///tmp/out";
         s.key_template = "a b";
       }),
       "--key", "control character or space"},
      {with([](StepFlags& s) { s.filters.assign(33, "invert"); }), "--filter",
       "want 1..32 ops, got 33"},
      {with([](StepFlags& s) { s.webhook = "ftp://127.0.0.1/hook"; }), "--webhook",
       "\"ftp://127.0.0.1/hook\""},
  };
  for (const auto& c : cases) {
    ExpectFlagError(BuildSubmitRequest(c.flags).status(), c.flag, c.detail);
  }
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

}  // namespace
}  // namespace conveyor::client
