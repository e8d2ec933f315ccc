#include "orchestrator/auth/reloading_file.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/orchestrator/fakes.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::orchestrator::auth {
namespace {

// A file holding one number; anything else does not parse.
absl::StatusOr<int> ReadNumber(const std::string& path) {
  int value = 0;
  if (!absl::SimpleAtoi(::conveyor::testing::ReadFile(path), &value)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a number"));
  }
  return value;
}

void Write(const std::string& path, const std::string& text) {
  // Through a rename, as Kubernetes and editors replace files.
  std::ofstream(path + ".new") << text;
  std::rename((path + ".new").c_str(), path.c_str());
}

class ReloadingFileTest : public ::testing::Test {
 protected:
  std::unique_ptr<ReloadingFile<int>> Load() {
    absl::StatusOr<std::unique_ptr<ReloadingFile<int>>> file =
        ReloadingFile<int>::Load("number file", path_, ReadNumber, clock_, absl::Seconds(1));
    EXPECT_TRUE(file.ok()) << file.status();
    return file.ok() ? *std::move(file) : nullptr;
  }

  ::conveyor::testing::TempDir dir_;
  const std::string path_ = dir_.path() + "/number";
  orchestrator::testing::FakeClock clock_;
};

TEST_F(ReloadingFileTest, ABadFileAtStartIsTheParsersError) {
  Write(path_, "seven");
  EXPECT_EQ(ReloadingFile<int>::Load("number file", path_, ReadNumber, clock_, absl::Seconds(1))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReloadingFile<int>::Load("number file", dir_.path() + "/none", ReadNumber, clock_,
                                     absl::Seconds(1))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ReloadingFileTest, AChangedFileIsReadOnceTheIntervalPassed) {
  Write(path_, "1");
  auto file = Load();
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(*file->Get(), 1);
  Write(path_, "22");
  EXPECT_EQ(*file->Get(), 1) << "within the interval the file is not looked at";
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(*file->Get(), 22);
}

TEST_F(ReloadingFileTest, ABadEditKeepsThePreviousValueUntilFixed) {
  Write(path_, "1");
  auto file = Load();
  ASSERT_NE(file, nullptr);
  std::shared_ptr<const int> held = file->Get();
  Write(path_, "oops");
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(*file->Get(), 1);
  std::remove(path_.c_str());
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(*file->Get(), 1) << "a removed file keeps the last value too";
  Write(path_, "333");
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(*file->Get(), 333);
  EXPECT_EQ(*held, 1) << "a snapshot stays valid";
}

TEST_F(ReloadingFileTest, StampChangesWithContentAndReplacement) {
  Write(path_, "1");
  absl::StatusOr<FileStamp> first = StampFile(path_);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*StampFile(path_), *first);
  Write(path_, "2");  // same size, new inode
  EXPECT_NE(*StampFile(path_), *first);
  EXPECT_EQ(StampFile(dir_.path()).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace conveyor::orchestrator::auth
