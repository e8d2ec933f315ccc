// Hostile input (issue 10): header/decoder desync, decoder-side size and
// scan limits, cancellation and deadlines inside each decoder.
#include "stages/common/image_codec.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "tests/stages/common/codec_samples.h"
#include "tests/stages/common/hostile_images.h"

namespace conveyor {
namespace {

using conveyor::hostile::HideBehindStuffedZero;
using conveyor::hostile::RealJpeg;
using conveyor::hostile::ScanBomb;
using conveyor::hostile::WithFrameSize;

// Peak resident set of this process, in bytes.
int64_t PeakRssBytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return int64_t{usage.ru_maxrss} * 1024;
}

TEST(ImageCodecTest, DesyncFilesAreRefusedAtTheHeader) {
  for (uint16_t side : {12000, 32768}) {
    const std::string hostile =
        HideBehindStuffedZero(WithFrameSize(RealJpeg(64, 48), side, side), 16, 16);
    auto header = CheckDeclaredSize(hostile, kDefaultMaxPixels);
    EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument) << side;
    EXPECT_EQ(ErrorReason(header.status()), kReasonNotAnImage) << header.status();
  }
}

// The decoder's own frame size is checked after jpeg_read_header, whatever
// the header check said: a file that gets past the parser still cannot make
// the decoder allocate 3 GB.
TEST(ImageCodecTest, DecoderSizeAboveTheLimitsIsRefusedBeforeAllocating) {
  const int64_t peak_before = PeakRssBytes();
  for (uint16_t side : {12000, 32768}) {  // 144 MP > --max-pixels; 32768 > 16384 a side
    const std::string bomb = WithFrameSize(RealJpeg(64, 48), side, side);
    auto image = DecodeImage(bomb, ImageHeader{ImageKind::kJpeg, 16, 16});
    EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument) << side;
    EXPECT_EQ(ErrorReason(image.status()), kReasonImageTooLarge) << image.status();
    EXPECT_NE(image.status().message().find(absl::StrCat(side, "x", side)), std::string::npos)
        << image.status();
  }
  // A decode of either would have touched 432 MB or 3 GB of pixels.
  EXPECT_LT(PeakRssBytes() - peak_before, int64_t{64} << 20);
}

TEST(ImageCodecTest, DecoderAndHeaderMustAgree) {
  const std::string jpeg = RealJpeg(64, 48);
  auto image = DecodeImage(jpeg, ImageHeader{ImageKind::kJpeg, 16, 16});
  EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(image.status()), kReasonHeaderMismatch) << image.status();
  EXPECT_NE(image.status().message().find("64x48"), std::string::npos) << image.status();

  const std::string png = Encode(Gradient(30, 20), ".png");
  image = DecodeImage(png, ImageHeader{ImageKind::kPng, 20, 30});
  EXPECT_EQ(ErrorReason(image.status()), kReasonHeaderMismatch) << image.status();

  const std::string webp = Encode(Gradient(30, 20), ".webp");
  image = DecodeImage(webp, ImageHeader{ImageKind::kWebp, 31, 20});
  EXPECT_EQ(ErrorReason(image.status()), kReasonHeaderMismatch) << image.status();
}

TEST(ImageCodecTest, DecoderSideLimitAppliesToEachFormat) {
  DecodeLimits limits;
  limits.max_side = 25;
  for (const char* ext : {".jpg", ".png", ".webp"}) {
    const std::string bytes = Encode(Gradient(30, 20), ext);
    auto header = CheckDeclaredSize(bytes, kDefaultMaxPixels);
    ASSERT_TRUE(header.ok()) << header.status();
    auto image = DecodeImage(bytes, *header, limits);
    EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument) << ext;
    EXPECT_EQ(ErrorReason(image.status()), kReasonImageTooLarge) << ext << image.status();
  }
}

TEST(ImageCodecTest, ScanBombIsRefusedWithTooManyScans) {
  const std::string bomb = ScanBomb(256, 256, 10000);
  auto header = CheckDeclaredSize(bomb, kDefaultMaxPixels);
  ASSERT_TRUE(header.ok()) << header.status();
  auto image = DecodeImage(bomb, *header, DecodeLimits{});
  EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(image.status()), kReasonTooManyScans) << image.status();
  EXPECT_NE(image.status().message().find("256"), std::string::npos) << image.status();
}

TEST(ImageCodecTest, ScansUpToTheLimitDecode) {
  // libjpeg's simple progression writes 10 scans for a color image.
  const std::string progressive = RealJpeg(64, 48, /*progressive=*/true);
  auto header = CheckDeclaredSize(progressive, kDefaultMaxPixels);
  ASSERT_TRUE(header.ok()) << header.status();
  DecodeLimits limits;
  limits.max_scans = 10;
  auto image = DecodeImage(progressive, *header, limits);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->size(), cv::Size(64, 48));
  limits.max_scans = 9;
  EXPECT_EQ(ErrorReason(DecodeImage(progressive, *header, limits).status()), kReasonTooManyScans);
  // 100 empty scans more stay under the default of 256: decoded, not refused.
  const std::string padded = ScanBomb(64, 48, 100);
  auto padded_header = CheckDeclaredSize(padded, kDefaultMaxPixels);
  ASSERT_TRUE(padded_header.ok()) << padded_header.status();
  EXPECT_TRUE(DecodeImage(padded, *padded_header, DecodeLimits{}).ok());
}

TEST(ImageCodecTest, CancellationStopsEachDecoderPromptly) {
  // Noise, so that the WebP is several of the decoder's 64 KiB input chunks.
  cv::Mat noise(512, 512, CV_8UC3);
  cv::randu(noise, cv::Scalar::all(0), cv::Scalar::all(255));
  for (const std::string& bytes :
       {ScanBomb(512, 512, 200), Encode(noise, ".png"), Encode(noise, ".webp")}) {
    auto header = CheckDeclaredSize(bytes, kDefaultMaxPixels);
    ASSERT_TRUE(header.ok()) << header.status();
    int polls = 0;
    DecodeLimits limits;
    limits.cancelled = [&polls] { return ++polls >= 2; };
    auto image = DecodeImage(bytes, *header, limits);
    EXPECT_EQ(image.status().code(), absl::StatusCode::kCancelled)
        << MediaTypeOf(header->kind) << " " << image.status();
    // Stopped at the poll that saw the cancellation, not at the end.
    EXPECT_EQ(polls, 2) << MediaTypeOf(header->kind);
  }
}

TEST(ImageCodecTest, PassedDeadlineStopsEachDecoder) {
  for (const std::string& bytes :
       {ScanBomb(64, 64, 10), Encode(Gradient(64, 64), ".png"), Encode(Gradient(64, 64), ".webp")}) {
    auto header = CheckDeclaredSize(bytes, kDefaultMaxPixels);
    ASSERT_TRUE(header.ok()) << header.status();
    DecodeLimits limits;
    limits.deadline = absl::Now() - absl::Seconds(1);
    EXPECT_EQ(DecodeImage(bytes, *header, limits).status().code(),
              absl::StatusCode::kDeadlineExceeded)
        << MediaTypeOf(header->kind);
  }
}

TEST(ImageCodecTest, DeclaredSideAboveTheCapIsRefusedBeforeDecoding) {
  auto header = CheckDeclaredSize(PngHeaderOnly(20000, 1), kDefaultMaxPixels);
  EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(header.status()), kReasonImageTooLarge) << header.status();
}

}  // namespace
}  // namespace conveyor
