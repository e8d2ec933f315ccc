#include "stages/resize/resize.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/image_header.h"
#include "common/status_details.h"

namespace conveyor::stages::resize {
namespace {

using v1::ResizeSpec;

ResizeSpec Spec(int width, int height, ResizeSpec::Fit fit = ResizeSpec::CONTAIN) {
  ResizeSpec spec;
  spec.set_width(width);
  spec.set_height(height);
  spec.set_fit(fit);
  return spec;
}

ResizePlan MustPlan(const ResizeSpec& spec, cv::Size source) {
  auto plan = PlanResize(spec, source);
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? *plan : ResizePlan{};
}

// A smooth photo-like test card: gradients plus soft circles.
cv::Mat TestCard(int width, int height) {
  cv::Mat image(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      image.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(x * 255 / width),
                                            static_cast<uchar>(y * 255 / height), 128);
    }
  }
  for (int i = 1; i <= 4; ++i) {
    cv::circle(image, cv::Point(width * i / 5, height / 2), std::min(width, height) / 8,
               cv::Scalar(40 * i, 255 - 40 * i, 60), cv::FILLED, cv::LINE_AA);
  }
  return image;
}

std::string Encode(const cv::Mat& image, const std::string& ext) {
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes));
  return std::string(bytes.begin(), bytes.end());
}

cv::Mat Decode(const std::string& bytes) {
  return cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1,
                              const_cast<char*>(bytes.data())),
                      cv::IMREAD_COLOR);
}

// --- geometry -------------------------------------------------------------

TEST(PlanResizeTest, ContainFitsInsideTheBox) {
  EXPECT_EQ(MustPlan(Spec(800, 800), {4000, 3000}).output, cv::Size(800, 600));
  EXPECT_EQ(MustPlan(Spec(800, 800), {3000, 4000}).output, cv::Size(600, 800));
  EXPECT_EQ(MustPlan(Spec(800, 100), {4000, 3000}).output, cv::Size(133, 100));
  EXPECT_EQ(MustPlan(Spec(800, 800), {4000, 3000}).source_region, cv::Rect(0, 0, 4000, 3000));
}

TEST(PlanResizeTest, ContainUpscales) {
  EXPECT_EQ(MustPlan(Spec(400, 400), {100, 50}).output, cv::Size(400, 200));
}

TEST(PlanResizeTest, UnspecifiedFitIsContain) {
  EXPECT_EQ(MustPlan(Spec(800, 800, ResizeSpec::FIT_UNSPECIFIED), {4000, 3000}).output,
            cv::Size(800, 600));
}

TEST(PlanResizeTest, DerivesMissingSideFromAspectRatio) {
  EXPECT_EQ(MustPlan(Spec(800, 0), {4000, 3000}).output, cv::Size(800, 600));
  EXPECT_EQ(MustPlan(Spec(0, 300), {4000, 3000}).output, cv::Size(400, 300));
  EXPECT_EQ(MustPlan(Spec(800, 0), {1920, 1280}).output, cv::Size(800, 533));
  EXPECT_EQ(MustPlan(Spec(800, 0, ResizeSpec::INSIDE), {1920, 1280}).output, cv::Size(800, 533));
  // A very thin image never derives a zero side.
  EXPECT_EQ(MustPlan(Spec(10, 0), {10000, 10}).output, cv::Size(10, 1));
}

TEST(PlanResizeTest, InsideNeverUpscales) {
  EXPECT_EQ(MustPlan(Spec(400, 400, ResizeSpec::INSIDE), {100, 50}).output, cv::Size(100, 50));
  EXPECT_EQ(MustPlan(Spec(0, 100, ResizeSpec::INSIDE), {100, 50}).output, cv::Size(100, 50));
  EXPECT_EQ(MustPlan(Spec(400, 400, ResizeSpec::INSIDE), {1000, 500}).output, cv::Size(400, 200));
  EXPECT_EQ(MustPlan(Spec(400, 0, ResizeSpec::INSIDE), {1000, 500}).output, cv::Size(400, 200));
}

TEST(PlanResizeTest, FillIgnoresAspectRatio) {
  ResizePlan plan = MustPlan(Spec(300, 500, ResizeSpec::FILL), {4000, 3000});
  EXPECT_EQ(plan.output, cv::Size(300, 500));
  EXPECT_EQ(plan.source_region, cv::Rect(0, 0, 4000, 3000));
}

TEST(PlanResizeTest, CoverCropsCentreToExactSize) {
  ResizePlan square = MustPlan(Spec(500, 500, ResizeSpec::COVER), {4000, 3000});
  EXPECT_EQ(square.output, cv::Size(500, 500));
  EXPECT_EQ(square.source_region, cv::Rect(500, 0, 3000, 3000));
  ResizePlan banner = MustPlan(Spec(400, 100, ResizeSpec::COVER), {3000, 4000});
  EXPECT_EQ(banner.output, cv::Size(400, 100));
  EXPECT_EQ(banner.source_region, cv::Rect(0, 1625, 3000, 750));
  // Cover may upscale too: the region keeps the target's aspect ratio.
  ResizePlan up = MustPlan(Spec(600, 200, ResizeSpec::COVER), {100, 100});
  EXPECT_EQ(up.output, cv::Size(600, 200));
  EXPECT_EQ(up.source_region, cv::Rect(0, 33, 100, 33));  // (100 - 33) / 2
}

TEST(PlanResizeTest, RejectsBadFieldsNamingThem) {
  struct Case {
    ResizeSpec spec;
    std::string field;
  };
  ResizeSpec bad_fit = Spec(10, 10);
  bad_fit.set_fit(static_cast<ResizeSpec::Fit>(42));
  const std::vector<Case> cases = {
      {Spec(-3, 10), "spec.width: want 0..16384, got -3"},
      {Spec(16385, 10), "spec.width: want 0..16384, got 16385"},
      {Spec(10, -1), "spec.height: want 0..16384, got -1"},
      {Spec(0, 0), "spec.width: want width and/or height above 0, got both 0"},
      {bad_fit, "spec.fit: want CONTAIN, COVER, FILL or INSIDE, got 42"},
      {Spec(0, 10, ResizeSpec::COVER), "spec.width: want 1..16384 with fit COVER, got 0"},
      {Spec(10, 0, ResizeSpec::FILL), "spec.height: want 1..16384 with fit FILL, got 0"},
  };
  for (const Case& c : cases) {
    auto plan = PlanResize(c.spec, {100, 100});
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(plan.status().message(), c.field);
  }
}

TEST(PlanResizeTest, RefusesDerivedSideAboveCap) {
  auto plan = PlanResize(Spec(16384, 0), {1, 1000});
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(plan.status()), kReasonImageTooLarge);
  EXPECT_TRUE(absl::StartsWith(plan.status().message(), "spec: want an output of at most 16384"))
      << plan.status();
}

// --- shrink-on-load --------------------------------------------------------

TEST(ShrinkFactorTest, QualityKeepsTwiceTheTarget) {
  // 2 MP -> 800 wide: 1732/2 = 866 < 1600, full decode.
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::QUALITY, {1732, 1155}, {800, 533}), 1);
  // 12 MP: 4243/2 = 2121 >= 1600 but 4243/4 = 1060 < 1600.
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::QUALITY, {4243, 2828}, {800, 533}), 2);
  // 24 MP: 6000/4 = 1500 < 1600.
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::QUALITY, {6000, 4000}, {800, 533}), 2);
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::QUALITY, {6400, 4000}, {800, 500}), 4);
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::QUALITY, {8000, 8000}, {100, 100}), 8);
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::SHRINK_ON_LOAD_UNSPECIFIED, {8000, 8000}, {100, 100}),
            8);
}

TEST(ShrinkFactorTest, FastKeepsAtLeastTheTarget) {
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::FAST, {1732, 1155}, {800, 533}), 2);
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::FAST, {4243, 2828}, {800, 533}), 4);
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::FAST, {6000, 4000}, {800, 533}), 4);
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::FAST, {6400, 4264}, {800, 533}), 8);
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::FAST, {1000, 1000}, {800, 800}), 1);
}

TEST(ShrinkFactorTest, BothSidesMustStayLargeEnough) {
  // FILL squashing the height: width allows 8, height only 1.
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::FAST, {8000, 1000}, {100, 900}), 1);
}

TEST(ShrinkFactorTest, OffAlwaysDecodesFullSize) {
  EXPECT_EQ(ChooseShrinkFactor(ResizeSpec::OFF, {8000, 8000}, {100, 100}), 1);
}

// --- decode -> resize -> encode ---------------------------------------------

v1::ResizeRequest Request(const std::string& data, const ResizeSpec& spec) {
  v1::ResizeRequest request;
  request.mutable_image()->set_data(data);
  *request.mutable_spec() = spec;
  return request;
}

absl::Status RunResize(const v1::ResizeRequest& request, v1::ResizeResponse& response,
                 ResizeStats& stats, ResizeOptions options = {}) {
  return Resizer(options).Resize(request, response, [] { return false; }, stats);
}

TEST(ResizerTest, ShrinksJpegWithShrinkOnLoad) {
  auto request = Request(Encode(TestCard(1600, 1200), ".jpg"), Spec(200, 0));
  v1::ResizeResponse response;
  ResizeStats stats;
  ASSERT_TRUE(RunResize(request, response, stats).ok());
  EXPECT_EQ(stats.decode_scale, 4);  // 1600/4 = 400 = 2 x 200
  EXPECT_EQ(stats.input, cv::Size(1600, 1200));
  EXPECT_EQ(stats.output, cv::Size(200, 150));
  EXPECT_EQ(response.image().media_type(), "image/jpeg");
  EXPECT_EQ(response.image().width(), 200);
  EXPECT_EQ(response.image().height(), 150);
  auto header = ParseImageHeader(response.image().data());
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->kind, ImageKind::kJpeg);
  EXPECT_EQ(cv::Size(header->width, header->height), cv::Size(200, 150));
}

double Psnr(const cv::Mat& a, const cv::Mat& b) { return cv::PSNR(a, b); }

TEST(ResizerTest, ShrinkOnLoadStaysCloseToFullDecode) {
  const std::string jpeg = Encode(TestCard(2400, 1600), ".jpg");
  std::vector<cv::Mat> outputs;
  std::vector<int> scales;
  for (auto mode : {ResizeSpec::OFF, ResizeSpec::QUALITY, ResizeSpec::FAST}) {
    ResizeSpec spec = Spec(300, 0);
    spec.set_shrink_on_load(mode);
    spec.mutable_output()->set_format(v1::IMAGE_FORMAT_PNG);  // compare without re-encoding loss
    v1::ResizeResponse response;
    ResizeStats stats;
    ASSERT_TRUE(RunResize(Request(jpeg, spec), response, stats).ok());
    outputs.push_back(Decode(response.image().data()));
    scales.push_back(stats.decode_scale);
    EXPECT_EQ(outputs.back().size(), cv::Size(300, 200));
  }
  EXPECT_EQ(scales, (std::vector<int>{1, 4, 8}));
  EXPECT_GT(Psnr(outputs[0], outputs[1]), 35.0);
  EXPECT_GT(Psnr(outputs[0], outputs[2]), 30.0);
}

// A `side` x 3`side` image, left third red, middle third green, right third
// blue, encoded as `ext`, to be cover-cropped to `out` x `out` PNG.
v1::ResizeRequest CoverOfThirds(int side, int out, const std::string& ext) {
  cv::Mat image(side, 3 * side, CV_8UC3, cv::Scalar(0, 0, 255));
  image(cv::Rect(side, 0, side, side)).setTo(cv::Scalar(0, 255, 0));
  image(cv::Rect(2 * side, 0, side, side)).setTo(cv::Scalar(255, 0, 0));
  ResizeSpec spec = Spec(out, out, ResizeSpec::COVER);
  spec.mutable_output()->set_format(v1::IMAGE_FORMAT_PNG);
  return Request(Encode(image, ext), spec);
}

TEST(ResizerTest, CoverProducesExactSizeFromCentre) {
  // A square cover crop of a 3:1 image keeps only green.
  v1::ResizeResponse response;
  ResizeStats stats;
  ASSERT_TRUE(RunResize(CoverOfThirds(100, 50, ".png"), response, stats).ok());
  cv::Mat out = Decode(response.image().data());
  ASSERT_EQ(out.size(), cv::Size(50, 50));
  EXPECT_EQ(cv::norm(out, cv::Mat(50, 50, CV_8UC3, cv::Scalar(0, 255, 0)), cv::NORM_INF), 0);
}

TEST(ResizerTest, CoverWithShrinkOnLoadKeepsTheCentre) {
  v1::ResizeResponse response;
  ResizeStats stats;
  ASSERT_TRUE(RunResize(CoverOfThirds(1000, 100, ".jpg"), response, stats).ok());
  EXPECT_EQ(stats.decode_scale, 4);  // the 1000x1000 region / 4 = 250 >= 2 x 100
  cv::Mat out = Decode(response.image().data());
  ASSERT_EQ(out.size(), cv::Size(100, 100));
  // Green everywhere, including the first and last columns: no red or blue
  // from outside the region (JPEG blurs the colour edges by a few pixels).
  for (int x : {0, 50, 99}) {
    cv::Vec3b px = out.at<cv::Vec3b>(50, x);
    EXPECT_LT(px[0], 40) << "x " << x;
    EXPECT_GT(px[1], 200) << "x " << x;
    EXPECT_LT(px[2], 40) << "x " << x;
  }
}

TEST(ResizerTest, PngInWebpOut) {
  ResizeSpec spec = Spec(64, 64);
  spec.mutable_output()->set_format(v1::IMAGE_FORMAT_WEBP);
  spec.mutable_output()->set_quality(90);
  v1::ResizeResponse response;
  ResizeStats stats;
  ASSERT_TRUE(RunResize(Request(Encode(TestCard(256, 128), ".png"), spec), response, stats).ok());
  EXPECT_EQ(stats.decode_scale, 1);  // never reduced for PNG
  EXPECT_EQ(response.image().media_type(), "image/webp");
  auto header = ParseImageHeader(response.image().data());
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->kind, ImageKind::kWebp);
  EXPECT_EQ(cv::Size(header->width, header->height), cv::Size(64, 32));
}

TEST(ResizerTest, WebpInKeepsWebpAndUpscales) {
  v1::ResizeResponse response;
  ResizeStats stats;
  ASSERT_TRUE(RunResize(Request(Encode(TestCard(40, 30), ".webp"), Spec(0, 60)), response, stats).ok());
  EXPECT_EQ(response.image().media_type(), "image/webp");
  EXPECT_EQ(Decode(response.image().data()).size(), cv::Size(80, 60));
}

TEST(ResizerTest, InsideKeepsSmallImageSize) {
  v1::ResizeResponse response;
  ResizeStats stats;
  auto request = Request(Encode(TestCard(40, 30), ".png"), Spec(400, 400, ResizeSpec::INSIDE));
  ASSERT_TRUE(RunResize(request, response, stats).ok());
  EXPECT_EQ(response.image().media_type(), "image/png");
  EXPECT_EQ(response.image().width(), 40);
  EXPECT_EQ(response.image().height(), 30);
}

// A PNG that is only a signature and an IHDR chunk declaring width x height.
std::string PngHeaderOnly(uint32_t width, uint32_t height) {
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  for (uint32_t v : {width, height}) {
    for (int shift : {24, 16, 8, 0}) png.push_back(static_cast<char>((v >> shift) & 0xFF));
  }
  png += std::string("\x08\x02\0\0\0\0\0\0\0", 9);
  return png;
}

TEST(ResizerTest, RefusesDecompressionBombWithoutDecoding) {
  v1::ResizeResponse response;
  ResizeStats stats;
  absl::Status status = RunResize(Request(PngHeaderOnly(100000, 100000), Spec(100, 100)), response,
                            stats);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(status), kReasonImageTooLarge);
  EXPECT_EQ(stats.input, cv::Size());  // never decoded
}

TEST(ResizerTest, MaxPixelsIsConfigurable) {
  const std::string png = Encode(TestCard(100, 100), ".png");
  v1::ResizeResponse response;
  ResizeStats stats;
  EXPECT_EQ(RunResize(Request(png, Spec(10, 10)), response, stats, {.max_pixels = 9999}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(RunResize(Request(png, Spec(10, 10)), response, stats, {.max_pixels = 10000}).ok());
}

TEST(ResizerTest, RefusesOutputAboveMaxPixels) {
  v1::ResizeResponse response;
  ResizeStats stats;
  absl::Status status = RunResize(Request(Encode(TestCard(100, 100), ".png"), Spec(16384, 16384)),
                            response, stats);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(status), kReasonImageTooLarge);
}

TEST(ResizerTest, RefusesNonImageBytes) {
  v1::ResizeResponse response;
  ResizeStats stats;
  absl::Status status = RunResize(Request("GIF89a not supported", Spec(10, 10)), response, stats);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(status), kReasonNotAnImage);
  EXPECT_EQ(RunResize(Request("", Spec(10, 10)), response, stats).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ResizerTest, RejectsBadSpecBeforeLookingAtImage) {
  v1::ResizeResponse response;
  ResizeStats stats;
  ResizeSpec spec = Spec(10, 10);
  spec.set_shrink_on_load(static_cast<ResizeSpec::ShrinkOnLoad>(7));
  absl::Status status = RunResize(Request("not an image", spec), response, stats);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "spec.shrink_on_load: want QUALITY, FAST or OFF, got 7");
  spec = Spec(10, 10);
  spec.mutable_output()->set_quality(500);
  status = RunResize(Request(Encode(TestCard(20, 20), ".png"), spec), response, stats);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(), "spec.output.quality:")) << status;
}

TEST(ResizerTest, StopsWhenCancelled) {
  v1::ResizeResponse response;
  ResizeStats stats;
  absl::Status status = Resizer({}).Resize(Request(Encode(TestCard(64, 64), ".jpg"), Spec(8, 8)),
                                           response, [] { return true; }, stats);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(response.image().data().empty());
}

// JPEG with an Exif APP1 segment saying "rotate 90 CW" (orientation 6).
std::string WithExifOrientation6(const std::string& jpeg) {
  std::string exif("\xFF\xE1\x00\x22" "Exif\0\0" "MM\0\x2a\0\0\0\x08"  // APP1, TIFF BE header
                   "\0\x01"                                            // one IFD entry
                   "\x01\x12\0\x03\0\0\0\x01\0\x06\0\0"               // Orientation = 6
                   "\0\0\0\0",                                         // no next IFD
                   36);
  return jpeg.substr(0, 2) + exif + jpeg.substr(2);
}

TEST(ResizerTest, FollowsExifOrientation) {
  const std::string jpeg = WithExifOrientation6(Encode(TestCard(1600, 800), ".jpg"));
  v1::ResizeResponse response;
  ResizeStats stats;
  ASSERT_TRUE(RunResize(Request(jpeg, Spec(200, 0)), response, stats).ok());
  // Oriented, the image is 800x1600 (portrait): 200 wide is 400 high.
  EXPECT_EQ(stats.input, cv::Size(800, 1600));
  EXPECT_EQ(stats.output, cv::Size(200, 400));
  EXPECT_EQ(stats.decode_scale, 2);  // 800/2 = 400 = 2 x 200 (not 4, as the header's 1600 allows)
}

}  // namespace
}  // namespace conveyor::stages::resize
