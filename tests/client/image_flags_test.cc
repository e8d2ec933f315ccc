#include "client/image_flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "tests/client/expect_flag_error.h"

namespace conveyor::client {
namespace {

TEST(ImageFlagsTest, ResizeGeometryForms) {
  EXPECT_EQ(ParseResizeGeometry("800x600")->width(), 800);
  EXPECT_EQ(ParseResizeGeometry("800X600")->height(), 600);
  EXPECT_EQ(ParseResizeGeometry("800x")->height(), 0);
  EXPECT_EQ(ParseResizeGeometry("x600")->width(), 0);
}

TEST(ImageFlagsTest, BadResizeGeometryNamesFlagAndValue) {
  for (const char* bad : {"", "x", "800", "800x600x2", "axb", "-5x10", "80 0x1", "800x0"}) {
    ExpectFlagError(ParseResizeGeometry(bad).status(), "--resize", bad);
  }
  ExpectFlagError(ParseResizeGeometry("20000x10").status(), "--resize", "width wants 1..16384");
}

TEST(ImageFlagsTest, BadFilterNamesTheProblem) {
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

TEST(ImageFlagsTest, BlurDefaultsToSigmaTwo) {
  absl::StatusOr<v1::FilterOp> op = ParseFilterOp("blur");
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_DOUBLE_EQ(op->gaussian_blur().sigma(), 2.0);
}

}  // namespace
}  // namespace conveyor::client
