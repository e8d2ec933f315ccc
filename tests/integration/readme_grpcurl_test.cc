// The README's grpcurl examples run as written: starts tools/dev-up.sh's
// stack, extracts the ```sh block of each "... with grpcurl" section of
// README.md and runs it with bash -euo pipefail, after the env file dev-up
// writes. grpcurl is not packaged in Debian 12: where it is not installed, a
// `grpcurl` on PATH hands each call to grpc-reflect (tests/testing), which
// does the same over server reflection and the network, and the test checks
// that every grpcurl line of the block really ran.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/testing/command_runner.h"
#include "tests/testing/process_fixture.h"

namespace conveyor {
namespace {

struct Block {
  std::string section;
  std::string script;
};

// The first ```sh block after each heading that ends in "with grpcurl".
std::vector<Block> GrpcurlBlocks(const std::string& readme) {
  std::vector<Block> blocks;
  std::vector<std::string> lines = absl::StrSplit(readme, '\n');
  std::string section;
  bool in_block = false;
  bool taken = false;
  Block current;
  for (const std::string& line : lines) {
    if (!in_block && absl::StartsWith(line, "#")) {
      section = absl::EndsWith(line, "with grpcurl") ? line : "";
      taken = false;
      continue;
    }
    if (!in_block && line == "```sh" && !section.empty() && !taken) {
      in_block = true;
      current = Block{section, ""};
      continue;
    }
    if (in_block && line == "```") {
      in_block = false;
      taken = true;
      blocks.push_back(current);
      continue;
    }
    if (in_block) absl::StrAppend(&current.script, line, "\n");
  }
  return blocks;
}

// Command lines in `script` that run grpcurl (at a line's start or in $(...)).
int CountGrpcurlCalls(const std::string& script) {
  int calls = 0;
  for (absl::string_view line : absl::StrSplit(script, '\n')) {
    line = absl::StripLeadingAsciiWhitespace(line);
    if (absl::StartsWith(line, "#")) continue;
    if (absl::StartsWith(line, "grpcurl ") || absl::StrContains(line, "$(grpcurl ")) ++calls;
  }
  return calls;
}

bool OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path == nullptr ? "" : path, ':')) {
    if (!dir.empty() && ::access(absl::StrCat(dir, "/", name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

TEST(ReadmeGrpcurlTest, EveryGrpcurlBlockRunsAsWrittenAgainstTheDevStack) {
  if (!std::filesystem::exists("/usr/share/backgrounds/mate/nature/Storm.jpg")) {
    GTEST_SKIP() << "mate-backgrounds is not installed (tools/setup.sh installs it)";
  }
  ASSERT_TRUE(OnPath("jq")) << "jq is not installed (tools/setup.sh installs it)";
  const std::vector<Block> blocks =
      GrpcurlBlocks(testing::ReadFile(std::string(CONVEYOR_SOURCE_DIR) + "/README.md"));
  ASSERT_EQ(blocks.size(), 2u) << "README.md: want the Orchestrator's and the workers' grpcurl "
                                  "sections, each with a ```sh block";

  testing::TempDir dir;
  const std::string state = dir.path() + "/state";
  const std::string build = std::filesystem::path(CONVEYOR_BIN_DIR).parent_path().string();
  const std::string source = CONVEYOR_SOURCE_DIR;
  testing::CommandResult up =
      testing::RunCommand({"/bin/bash", source + "/tools/dev-up.sh", "--build-dir", build,
                           "--state-dir", state, "--quiet"},
                          absl::Seconds(60));
  struct Down {
    std::string source, state;
    ~Down() { testing::RunCommand({"/bin/bash", source + "/tools/dev-down.sh", "--state-dir", state}); }
  } down{source, state};
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;

  // grpcurl itself where installed; otherwise grpc-reflect behind the name,
  // logging each call.
  const bool real_grpcurl = OnPath("grpcurl");
  const std::string shim = dir.path() + "/shim";
  const std::string calls = dir.path() + "/calls";
  std::filesystem::create_directories(shim);
  {
    std::ofstream out(shim + "/grpcurl");
    // One line per call (arguments may span lines).
    out << "#!/bin/sh\necho call >> '" << calls << "'\nexec '" << CONVEYOR_BIN_DIR
        << "/grpc-reflect' \"$@\"\n";
  }
  ::chmod((shim + "/grpcurl").c_str(), 0755);
  const char* path = std::getenv("PATH");
  const std::vector<std::string> env = {
      absl::StrCat("PATH=", real_grpcurl ? "" : shim + ":", path == nullptr ? "/usr/bin:/bin" : path),
      "CONVEYOR_DEV_STATE=" + state, "TMPDIR=" + dir.path()};

  for (const Block& block : blocks) {
    std::filesystem::remove(calls);
    const std::string script = dir.path() + "/block.sh";
    std::ofstream(script) << block.script;
    testing::CommandResult run =
        testing::RunCommand({"/bin/bash", "-euo", "pipefail", script}, absl::Seconds(90), env);
    EXPECT_EQ(run.exit_code, 0) << block.section << "\n--- script:\n" << block.script
                                << "\n--- stdout:\n" << run.out.substr(0, 4000)
                                << "\n--- stderr:\n" << run.err;
    if (!real_grpcurl) {
      const std::string log = testing::ReadFile(calls);
      const int ran = static_cast<int>(std::count(log.begin(), log.end(), '\n'));
      EXPECT_EQ(ran, CountGrpcurlCalls(block.script)) << block.section << "\n" << log;
      EXPECT_GE(ran, 5) << block.section;
    }
  }
  // What the blocks did reached the real stack.
  EXPECT_TRUE(std::filesystem::exists(state + "/out/thumbs/demo-3.jpg"));
  bool delivered = false;
  for (const auto& entry : std::filesystem::directory_iterator(state + "/webhooks")) {
    delivered |= absl::StrContains(testing::ReadFile(entry.path().string()),
                                   "\"signature_verified\": true");
  }
  EXPECT_TRUE(delivered);
}

}  // namespace
}  // namespace conveyor
