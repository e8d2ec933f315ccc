#include "stages/filter/filter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/image_header.h"
#include "common/status_details.h"

namespace conveyor::stages::filter {
namespace {

using v1::FilterOp;
using v1::FilterSpec;

cv::Mat Solid(int width, int height, cv::Vec3b bgr) {
  return cv::Mat(height, width, CV_8UC3, cv::Scalar(bgr[0], bgr[1], bgr[2]));
}

cv::Vec3b At(const cv::Mat& image, int x, int y) { return image.at<cv::Vec3b>(y, x); }

// Works on a deep copy: cv::Mat copies share pixels, and ops write in place.
cv::Mat Apply(const FilterOp& op, const cv::Mat& source) {
  cv::Mat image = source.clone();
  absl::Status status = ApplyFilterOp(op, image);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(image.type(), CV_8UC3);
  return image;
}

FilterOp Grayscale() {
  FilterOp op;
  op.mutable_grayscale();
  return op;
}
FilterOp Invert() {
  FilterOp op;
  op.mutable_invert();
  return op;
}
FilterOp Sepia() {
  FilterOp op;
  op.mutable_sepia();
  return op;
}
FilterOp Blur(double sigma) {
  FilterOp op;
  op.mutable_gaussian_blur()->set_sigma(sigma);
  return op;
}
FilterOp Sharpen(double amount, double sigma = 0) {
  FilterOp op;
  op.mutable_sharpen()->set_amount(amount);
  op.mutable_sharpen()->set_sigma(sigma);
  return op;
}
FilterOp BrightnessContrast(double brightness, double contrast) {
  FilterOp op;
  op.mutable_brightness_contrast()->set_brightness(brightness);
  op.mutable_brightness_contrast()->set_contrast(contrast);
  return op;
}
FilterOp Edges(double low = 0, double high = 0) {
  FilterOp op;
  op.mutable_edge_detect()->set_low_threshold(low);
  op.mutable_edge_detect()->set_high_threshold(high);
  return op;
}

// --- each operation ---------------------------------------------------------

TEST(FilterOpTest, InvertNegatesEveryChannel) {
  cv::Mat out = Apply(Invert(), Solid(4, 3, {10, 0, 255}));
  EXPECT_EQ(At(out, 2, 1), cv::Vec3b(245, 255, 0));
}

TEST(FilterOpTest, GrayscaleMakesChannelsEqualLuma) {
  // B=10 G=120 R=240: 0.299 R + 0.587 G + 0.114 B = 143.3.
  cv::Mat out = Apply(Grayscale(), Solid(4, 4, {10, 120, 240}));
  cv::Vec3b px = At(out, 1, 1);
  EXPECT_EQ(px[0], px[1]);
  EXPECT_EQ(px[1], px[2]);
  EXPECT_NEAR(px[0], 143, 1);
}

TEST(FilterOpTest, SepiaUsesClassicMatrix) {
  cv::Mat image = Solid(2, 1, {10, 120, 240});
  image.at<cv::Vec3b>(0, 1) = cv::Vec3b(255, 255, 255);
  cv::Mat out = Apply(Sepia(), image);
  // R' = .393 R + .769 G + .189 B = 188.5; G' = .349 R + .686 G + .168 B = 167.8;
  // B' = .272 R + .534 G + .131 B = 130.7.
  cv::Vec3b px = At(out, 0, 0);
  EXPECT_NEAR(px[2], 188, 1);
  EXPECT_NEAR(px[1], 168, 1);
  EXPECT_NEAR(px[0], 131, 1);
  // White saturates red and green; blue is 0.937 x 255.
  EXPECT_EQ(At(out, 1, 0), cv::Vec3b(239, 255, 255));
}

TEST(FilterOpTest, BrightnessContrastIsLinearAndSaturated) {
  cv::Mat image(1, 3, CV_8UC3);
  image.at<cv::Vec3b>(0, 0) = cv::Vec3b(10, 10, 10);
  image.at<cv::Vec3b>(0, 1) = cv::Vec3b(100, 100, 100);
  image.at<cv::Vec3b>(0, 2) = cv::Vec3b(200, 3, 0);
  cv::Mat out = Apply(BrightnessContrast(-10, 2), image);
  EXPECT_EQ(At(out, 0, 0), cv::Vec3b(10, 10, 10));
  EXPECT_EQ(At(out, 1, 0), cv::Vec3b(190, 190, 190));
  EXPECT_EQ(At(out, 2, 0), cv::Vec3b(255, 0, 0));
  // contrast 0 means 1.0: brightness only.
  EXPECT_EQ(At(Apply(BrightnessContrast(20, 0), Solid(1, 1, {1, 2, 3})), 0, 0),
            cv::Vec3b(21, 22, 23));
}

TEST(FilterOpTest, GaussianBlurSpreadsAPoint) {
  cv::Mat image = Solid(21, 21, {0, 0, 0});
  image.at<cv::Vec3b>(10, 10) = cv::Vec3b(255, 255, 255);
  cv::Mat out = Apply(Blur(2.0), image);
  EXPECT_LT(At(out, 10, 10)[0], 255);
  EXPECT_GT(At(out, 11, 10)[0], 0);
  EXPECT_EQ(At(out, 10, 9), At(out, 10, 11));  // symmetric
  EXPECT_LT(At(out, 12, 10)[0], At(out, 11, 10)[0]);
  // A flat image stays flat.
  EXPECT_EQ(cv::norm(Apply(Blur(5), Solid(9, 9, {7, 8, 9})), Solid(9, 9, {7, 8, 9}),
                     cv::NORM_INF),
            0);
}

TEST(FilterOpTest, SharpenOvershootsAtAnEdge) {
  cv::Mat image = Solid(20, 4, {50, 50, 50});
  image(cv::Rect(10, 0, 10, 4)).setTo(cv::Scalar(150, 150, 150));
  cv::Mat out = Apply(Sharpen(1.0), image);
  EXPECT_GT(At(out, 10, 1)[0], 150);  // bright side of the edge gets brighter
  EXPECT_LT(At(out, 9, 1)[0], 50);    // dark side darker
  EXPECT_EQ(At(out, 0, 1)[0], 50);    // far from the edge: unchanged
  EXPECT_EQ(At(out, 19, 1)[0], 150);
}

TEST(FilterOpTest, CannyFindsTheEdgesOfASquare) {
  cv::Mat image = Solid(100, 100, {0, 0, 0});
  image(cv::Rect(30, 30, 40, 40)).setTo(cv::Scalar(255, 255, 255));
  cv::Mat out = Apply(Edges(), image);
  cv::Mat gray;
  cv::extractChannel(out, gray, 0);
  EXPECT_EQ(cv::norm(gray, [&] { cv::Mat c; cv::extractChannel(out, c, 2); return c; }(),
                     cv::NORM_INF),
            0);  // channels equal
  // Edge pixels along each side, none inside or far outside.
  int left = cv::countNonZero(gray(cv::Rect(28, 35, 4, 30)));
  int right = cv::countNonZero(gray(cv::Rect(68, 35, 4, 30)));
  int top = cv::countNonZero(gray(cv::Rect(35, 28, 30, 4)));
  EXPECT_GE(left, 30);
  EXPECT_GE(right, 30);
  EXPECT_GE(top, 30);
  EXPECT_EQ(cv::countNonZero(gray(cv::Rect(35, 35, 30, 30))), 0);
  EXPECT_EQ(cv::countNonZero(gray(cv::Rect(0, 0, 20, 20))), 0);
  EXPECT_EQ(At(out, 50, 50), cv::Vec3b(0, 0, 0));
}

TEST(FilterOpTest, HighCannyThresholdsFindNothingOnSoftEdges) {
  cv::Mat image = Solid(100, 100, {0, 0, 0});
  image(cv::Rect(30, 30, 40, 40)).setTo(cv::Scalar(20, 20, 20));  // faint square
  EXPECT_EQ(cv::countNonZero(cv::Mat(Apply(Edges(900, 1000), image).reshape(1))), 0);
  EXPECT_GT(cv::countNonZero(cv::Mat(Apply(Edges(10, 30), image).reshape(1))), 0);
}

// --- validation ---------------------------------------------------------------

FilterSpec SpecOf(std::vector<FilterOp> ops) {
  FilterSpec spec;
  for (FilterOp& op : ops) *spec.add_ops() = std::move(op);
  return spec;
}

void ExpectInvalid(const FilterSpec& spec, const std::string& message) {
  absl::Status status = CheckFilterSpec("spec", spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << message;
  EXPECT_EQ(status.message(), message);
}

TEST(ValidateFilterSpecTest, AcceptsEveryOpInRange) {
  EXPECT_TRUE(CheckFilterSpec("spec", SpecOf({Grayscale(), Blur(100), Sharpen(10, 20), Sepia(),
                                         BrightnessContrast(-255, 10), Invert(),
                                         Edges(1000, 1000), Edges(0, 50), Edges()}))
                  .ok());
}

TEST(ValidateFilterSpecTest, NamesTheBadParameter) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ExpectInvalid(SpecOf({Invert(), Invert(), Blur(0)}),
                "spec.ops[2].gaussian_blur.sigma: want (0, 100], got 0");
  ExpectInvalid(SpecOf({Blur(100.5)}), "spec.ops[0].gaussian_blur.sigma: want (0, 100], got 100.5");
  ExpectInvalid(SpecOf({Blur(nan)}), "spec.ops[0].gaussian_blur.sigma: want (0, 100], got nan");
  ExpectInvalid(SpecOf({Sharpen(0)}), "spec.ops[0].sharpen.amount: want (0, 10], got 0");
  ExpectInvalid(SpecOf({Sharpen(11)}), "spec.ops[0].sharpen.amount: want (0, 10], got 11");
  ExpectInvalid(SpecOf({Sharpen(1, -1)}),
                "spec.ops[0].sharpen.sigma: want [0, 20] (0 = 1.0), got -1");
  ExpectInvalid(SpecOf({Sharpen(1, 21)}),
                "spec.ops[0].sharpen.sigma: want [0, 20] (0 = 1.0), got 21");
  ExpectInvalid(SpecOf({BrightnessContrast(256, 1)}),
                "spec.ops[0].brightness_contrast.brightness: want [-255, 255], got 256");
  ExpectInvalid(SpecOf({BrightnessContrast(0, -0.5)}),
                "spec.ops[0].brightness_contrast.contrast: want [0, 10] (0 = 1.0), got -0.5");
  ExpectInvalid(SpecOf({BrightnessContrast(0, 10.5)}),
                "spec.ops[0].brightness_contrast.contrast: want [0, 10] (0 = 1.0), got 10.5");
  ExpectInvalid(SpecOf({Edges(-1, 0)}),
                "spec.ops[0].edge_detect.low_threshold: want [0, 1000], got -1");
  ExpectInvalid(SpecOf({Edges(0, 1001)}),
                "spec.ops[0].edge_detect.high_threshold: want [low_threshold, 1000] (0 = 200), "
                "got 1001");
  ExpectInvalid(SpecOf({Edges(300, 100)}),
                "spec.ops[0].edge_detect.high_threshold: want [low_threshold, 1000] (0 = 200), "
                "got 100 below low_threshold 300");
  // high 0 means 200, which is below a low of 300.
  EXPECT_EQ(CheckFilterSpec("spec", SpecOf({Edges(300, 0)})).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ValidateFilterSpecTest, RejectsEmptyOpAndBadCounts) {
  ExpectInvalid(SpecOf({Invert(), FilterOp()}),
                "spec.ops[1]: want one operation (grayscale, gaussian_blur, sharpen, sepia, "
                "brightness_contrast, invert or edge_detect), got none");
  ExpectInvalid(SpecOf({}), "spec.ops: want 1..32 ops, got 0");
  EXPECT_TRUE(CheckFilterSpec("spec", SpecOf(std::vector<FilterOp>(32, Invert()))).ok());
  ExpectInvalid(SpecOf(std::vector<FilterOp>(33, Invert())),
                "spec.ops: want 1..32 ops, got 33");
}

// --- decode -> ops -> encode ------------------------------------------------

std::string Encode(const cv::Mat& image, const std::string& ext) {
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes));
  return std::string(bytes.begin(), bytes.end());
}

cv::Mat Decode(const std::string& bytes) {
  return cv::imdecode(std::vector<uchar>(bytes.begin(), bytes.end()), cv::IMREAD_COLOR);
}

v1::FilterRequest Request(const std::string& data, FilterSpec spec) {
  v1::FilterRequest request;
  request.mutable_image()->set_data(data);
  *request.mutable_spec() = std::move(spec);
  return request;
}

absl::Status RunFilter(const v1::FilterRequest& request, v1::FilterResponse& response,
                       FilterOptions options = {}) {
  FilterStats stats;
  return Filterer(options).Filter(request, response, [] { return false; }, stats);
}

TEST(FiltererTest, AppliesOpsInOrderPngInPngOut) {
  // Invert then brightness +5: 10 -> 245 -> 250. The other order gives 240.
  v1::FilterResponse response;
  ASSERT_TRUE(RunFilter(Request(Encode(Solid(8, 6, {10, 10, 10}), ".png"),
                                SpecOf({Invert(), BrightnessContrast(5, 0)})),
                        response)
                  .ok());
  EXPECT_EQ(response.image().media_type(), "image/png");
  EXPECT_EQ(response.image().width(), 8);
  EXPECT_EQ(response.image().height(), 6);
  EXPECT_EQ(At(Decode(response.image().data()), 3, 3), cv::Vec3b(250, 250, 250));
}

TEST(FiltererTest, JpegInWebpOut) {
  FilterSpec spec = SpecOf({Grayscale()});
  spec.mutable_output()->set_format(v1::IMAGE_FORMAT_WEBP);
  v1::FilterResponse response;
  ASSERT_TRUE(RunFilter(Request(Encode(Solid(32, 16, {10, 120, 240}), ".jpg"), spec), response)
                  .ok());
  EXPECT_EQ(response.image().media_type(), "image/webp");
  auto header = ParseImageHeader(response.image().data());
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->kind, ImageKind::kWebp);
  EXPECT_EQ(cv::Size(header->width, header->height), cv::Size(32, 16));
}

TEST(FiltererTest, WebpInKeepsWebp) {
  v1::FilterResponse response;
  ASSERT_TRUE(RunFilter(Request(Encode(Solid(16, 16, {1, 2, 3}), ".webp"), SpecOf({Sepia()})),
                        response)
                  .ok());
  EXPECT_EQ(response.image().media_type(), "image/webp");
}

TEST(FiltererTest, RefusesDecompressionBombWithoutDecoding) {
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\x01\x86\xa0\0\x01\x86\xa0\x08\x02\0\0\0", 29);
  png += std::string(4, '\0');
  v1::FilterResponse response;
  absl::Status status = RunFilter(Request(png, SpecOf({Invert()})), response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(status), kReasonImageTooLarge);
}

TEST(FiltererTest, RefusesSideAboveCapEvenUnderMaxPixels) {
  // 20000 x 1 is only 20000 pixels, but wider than any output may be.
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\x4e\x20\0\0\0\x01\x08\x02\0\0\0", 29);
  png += std::string(4, '\0');
  v1::FilterResponse response;
  absl::Status status = RunFilter(Request(png, SpecOf({Invert()})), response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(status), kReasonImageTooLarge);
}

TEST(FiltererTest, RefusesNonImageBytes) {
  v1::FilterResponse response;
  absl::Status status = RunFilter(Request("plain text", SpecOf({Invert()})), response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(status), kReasonNotAnImage);
}

TEST(FiltererTest, ValidatesSpecBeforeTheImage) {
  v1::FilterResponse response;
  absl::Status status = RunFilter(Request("plain text", SpecOf({Blur(0)})), response);
  EXPECT_EQ(status.message(), "spec.ops[0].gaussian_blur.sigma: want (0, 100], got 0");
  FilterSpec spec = SpecOf({Invert()});
  spec.mutable_output()->set_quality(-4);
  status = RunFilter(Request(Encode(Solid(4, 4, {1, 1, 1}), ".png"), spec), response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(), "spec.output.quality:")) << status;
}

TEST(FiltererTest, StopsWhenCancelled) {
  v1::FilterResponse response;
  FilterStats stats;
  absl::Status status =
      Filterer({}).Filter(Request(Encode(Solid(4, 4, {1, 1, 1}), ".png"), SpecOf({Invert()})),
                          response, [] { return true; }, stats);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(stats.ops, 0);
}

}  // namespace
}  // namespace conveyor::stages::filter
