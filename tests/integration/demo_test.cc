// Runs tools/demo.sh end to end against the binaries of this build
// (CONVEYOR_DEMO_SKIP_BUILD=1: ctest runs after the build, and the demo's
// own setup/build step needs root and the network).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/testing/command_runner.h"
#include "tests/testing/process_fixture.h"

namespace conveyor {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(DemoTest, OneCommandProcessesThePhotoAndStopsEverything) {
  if (!std::filesystem::exists("/usr/share/backgrounds/mate/nature/Storm.jpg")) {
    GTEST_SKIP() << "mate-backgrounds is not installed (tools/setup.sh installs it)";
  }
  testing::TempDir dir;
  const std::string work = dir.path() + "/demo";
  const std::string build = std::filesystem::path(CONVEYOR_BIN_DIR).parent_path().string();
  testing::CommandResult r = testing::RunCommand(
      {"/bin/bash", std::string(CONVEYOR_SOURCE_DIR) + "/tools/demo.sh"}, absl::Seconds(120),
      {"CONVEYOR_DEMO_SKIP_BUILD=1", "CONVEYOR_BUILD_DIR=" + build, "CONVEYOR_DEMO_DIR=" + work});
  const std::string all =
      absl::StrCat("exit ", r.exit_code, "\nstdout:\n", r.out, "\nstderr:\n", r.err);
  ASSERT_EQ(r.exit_code, 0) << all;
  // Five steps ran (piped here, so one line per event) and the chain ended well.
  for (const char* stage : {"download", "resize", "filter", "upload", "webhook"}) {
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat(" ", stage, " attempt=1 state="))) << stage;
  }
  EXPECT_THAT(r.out, HasSubstr("CHAIN_SUCCEEDED"));
  // Storm.jpg is 3:2... whatever its ratio, the output is 800 wide.
  EXPECT_THAT(r.out, HasSubstr("Output image: " + work + "/out/"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("  800x[0-9]+, [0-9]+ bytes, image/jpeg"));
  EXPECT_THAT(r.out, HasSubstr("signature: VERIFIED"));
  EXPECT_THAT(r.out, HasSubstr("\"chain\": \"chains/"));
  EXPECT_THAT(r.out, HasSubstr("dev-down: stopped 9 processes"));
  EXPECT_THAT(r.err, Not(HasSubstr("ignored SIGTERM")));
  // No process that was given a path in the work dir is left running.
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string cmdline = testing::ReadFile(entry.path().string() + "/cmdline");
    EXPECT_EQ(cmdline.find(work), std::string::npos) << "left running: " << entry.path();
  }
  // Only the output image is left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(work)) {
    EXPECT_EQ(entry.path().filename(), "out");
    ++files;
  }
  EXPECT_EQ(files, 1);
  int images = 0;
  for (const auto& entry : std::filesystem::directory_iterator(work + "/out")) {
    EXPECT_EQ(entry.path().extension(), ".jpg");
    ++images;
  }
  EXPECT_EQ(images, 1);
}

}  // namespace
}  // namespace conveyor
