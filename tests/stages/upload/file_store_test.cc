#include "stages/upload/file_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/types/optional.h"
#include "common/status_details.h"
#include "common/sha256.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::stages::upload {
namespace {

namespace fs = std::filesystem;

// The field of the first BadRequest violation in `status`, or "".
std::string BadRequestFieldOf(const absl::Status& status) {
  const size_t colon = status.message().find(':');
  return colon == absl::string_view::npos ? "" : std::string(status.message().substr(0, colon));
}
using conveyor::testing::ReadFile;
using conveyor::testing::TempDir;

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(temp_.path().empty());
    root_ = fs::path(temp_.path()) / "root";
    absl::StatusOr<FileStore> store = FileStore::Open(root_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_.emplace(*std::move(store));
  }

  // The canonical root as a string, for building destinations.
  std::string Root() const { return store_->root().string(); }

  static void ExpectEscape(const absl::Status& status, absl::string_view field) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_EQ(ErrorReason(status), "PATH_ESCAPES_ROOT") << status;
    EXPECT_TRUE(absl::StartsWith(status.message(), field)) << status;
  }

  TempDir temp_;
  fs::path root_;
  absl::optional<FileStore> store_;
};

TEST_F(FileStoreTest, OpenCreatesTheRoot) { EXPECT_TRUE(fs::is_directory(root_)); }

TEST_F(FileStoreTest, OpenRejectsRelativeRoot) {
  EXPECT_EQ(FileStore::Open("relative/dir").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FileStoreTest, OpenRejectsAFileAsRoot) {
  const fs::path file = fs::path(temp_.path()) / "plain";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    std::fclose(f);
  }
  EXPECT_EQ(FileStore::Open(file).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(FileStoreTest, WritesAtomicallyWithDigestAndUri) {
  absl::StatusOr<conveyor::v1::StoredObject> object =
      store_->Write(Root() + "/thumbs", "a/b.jpg", "abc", "image/jpeg", nullptr);
  ASSERT_TRUE(object.ok()) << object.status();
  const fs::path written = store_->root() / "thumbs/a/b.jpg";
  EXPECT_EQ(ReadFile(written.string()), "abc");
  EXPECT_EQ(object->uri(), "file://" + written.string());
  EXPECT_EQ(object->size_bytes(), 3);
  EXPECT_EQ(object->sha256(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(object->media_type(), "image/jpeg");
  EXPECT_EQ(object->etag(), "");
  // No temporary file is left behind, and others may read the object.
  EXPECT_EQ(std::distance(fs::directory_iterator(written.parent_path()), fs::directory_iterator()),
            1);
  EXPECT_EQ(fs::status(written).permissions() & fs::perms::others_read, fs::perms::others_read);
}

TEST_F(FileStoreTest, SecondWriteReplacesTheObject) {
  ASSERT_TRUE(store_->Write(Root(), "k.png", "first", "image/png", nullptr).ok());
  absl::StatusOr<conveyor::v1::StoredObject> again =
      store_->Write(Root(), "k.png", "second!", "image/png", nullptr);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(ReadFile((store_->root() / "k.png").string()), "second!");
  EXPECT_EQ(again->sha256(), Sha256Hex("second!"));
  EXPECT_EQ(std::distance(fs::directory_iterator(store_->root()), fs::directory_iterator()), 1);
}

TEST_F(FileStoreTest, NoOverwriteKeepsAnotherWritersObject) {
  OverwritePolicy a{true, "chains/a/steps/1"};
  OverwritePolicy b{true, "chains/b/steps/1"};
  ASSERT_TRUE(store_->Write(Root(), "k.png", "first", "image/png", nullptr, a).ok());
  absl::StatusOr<conveyor::v1::StoredObject> other =
      store_->Write(Root(), "k.png", "second", "image/png", nullptr, b);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists) << other.status();
  EXPECT_EQ(ErrorReason(other.status()), "OBJECT_EXISTS");
  EXPECT_EQ(ReadFile((store_->root() / "k.png").string()), "first");
  // The same bytes are success (a retry whose first attempt landed).
  EXPECT_TRUE(store_->Write(Root(), "k.png", "first", "image/png", nullptr, b).ok());
  // The same chain and step replace their own object.
  absl::StatusOr<conveyor::v1::StoredObject> retry =
      store_->Write(Root(), "k.png", "again", "image/png", nullptr, a);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(ReadFile((store_->root() / "k.png").string()), "again");
  // Nothing temporary is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(store_->root()), fs::directory_iterator()), 1);
}

TEST_F(FileStoreTest, NoOverwriteRefusesAFileWithoutOrigin) {
  {
    std::ofstream planted(store_->root() / "authorized.png");
    planted << "planted";
  }
  auto status =
      store_->Write(Root(), "authorized.png", "x", "image/png", nullptr, {true, "chains/a/steps/1"});
  EXPECT_EQ(status.status().code(), absl::StatusCode::kAlreadyExists) << status.status();
  EXPECT_EQ(ReadFile((store_->root() / "authorized.png").string()), "planted");
}

// Issue 10: ENAMETOOLONG came back as PATH_ESCAPES_ROOT.
TEST_F(FileStoreTest, OverLongNameIsNameTooLongNotAnEscape) {
  for (const std::string& key : {std::string(300, 'a') + ".png",
                                 std::string(244, 'b') + ".png"}) {
    auto object = store_->Write(Root(), key, "x", "image/png", nullptr);
    EXPECT_EQ(object.status().code(), absl::StatusCode::kInvalidArgument) << object.status();
    EXPECT_EQ(ErrorReason(object.status()), "NAME_TOO_LONG") << object.status();
    EXPECT_EQ(BadRequestFieldOf(object.status()), "spec.key_template");
  }
  std::string deep;
  for (int i = 0; i < 20; ++i) deep += std::string(240, 'd') + "/";
  auto object = store_->Write(Root(), deep + "x.png", "x", "image/png", nullptr);
  EXPECT_EQ(ErrorReason(object.status()), "NAME_TOO_LONG") << object.status();
  EXPECT_TRUE(store_->Write(Root(), std::string(239, 'c') + ".png", "x", "image/png", nullptr).ok());
}

TEST_F(FileStoreTest, ConcurrentWritersLeaveOneCompleteObject) {
  // Retries racing each other: whichever rename lands last wins, whole.
  std::vector<std::string> payloads;
  for (int i = 0; i < 8; ++i)
    payloads.push_back(std::string(256 << 10, static_cast<char>('a' + i)));
  std::vector<absl::Status> results(payloads.size());
  {
    std::vector<std::thread> writers;
    for (size_t i = 0; i < payloads.size(); ++i) {
      writers.emplace_back([&, i] {
        results[i] =
            store_->Write(Root(), "race/k.jpg", payloads[i], "image/jpeg", nullptr).status();
      });
    }
    for (std::thread& writer : writers) writer.join();
  }
  for (const absl::Status& result : results) EXPECT_TRUE(result.ok()) << result;
  const std::string final_bytes = ReadFile((store_->root() / "race/k.jpg").string());
  EXPECT_NE(std::find(payloads.begin(), payloads.end(), final_bytes), payloads.end());
  EXPECT_EQ(
      std::distance(fs::directory_iterator(store_->root() / "race"), fs::directory_iterator()), 1);
}

TEST_F(FileStoreTest, RootItselfIsAValidDirectory) {
  EXPECT_TRUE(store_->Resolve(Root(), "x.jpg").ok());
  // ...spelled through ".." too, as long as it stays inside.
  EXPECT_TRUE(store_->Resolve(Root() + "/sub/..", "x.jpg").ok());
}

TEST_F(FileStoreTest, DotDotInDestinationEscapes) {
  ExpectEscape(store_->Resolve(Root() + "/..", "x.jpg").status(), "spec.destination");
  ExpectEscape(store_->Resolve(Root() + "/a/../../outside", "x.jpg").status(), "spec.destination");
}

TEST_F(FileStoreTest, AbsoluteDestinationOutsideRootEscapes) {
  ExpectEscape(store_->Resolve("/etc", "x.jpg").status(), "spec.destination");
  // A sibling whose name merely starts with the root's name is outside too.
  ExpectEscape(store_->Resolve(Root() + "-evil", "x.jpg").status(), "spec.destination");
}

TEST_F(FileStoreTest, SymlinkedDirectoryLeadingOutEscapes) {
  const fs::path outside = fs::path(temp_.path()) / "outside";
  fs::create_directories(outside);
  fs::create_directory_symlink(outside, store_->root() / "link");
  ExpectEscape(store_->Resolve(Root() + "/link", "x.jpg").status(), "spec.destination");
  ExpectEscape(store_->Resolve(Root(), "link/x.jpg").status(), "spec.key_template");
  ExpectEscape(store_->Write(Root(), "link/x.jpg", "abc", "image/jpeg", nullptr).status(),
               "spec.key_template");
  EXPECT_TRUE(fs::is_empty(outside));
}

TEST_F(FileStoreTest, SymlinkedFileLeadingOutEscapes) {
  const fs::path outside = fs::path(temp_.path()) / "victim.jpg";
  {
    std::FILE* f = std::fopen(outside.c_str(), "w");
    std::fclose(f);
  }
  fs::create_symlink(outside, store_->root() / "x.jpg");
  ExpectEscape(store_->Write(Root(), "x.jpg", "abc", "image/jpeg", nullptr).status(),
               "spec.key_template");
  EXPECT_EQ(ReadFile(outside.string()), "");
}

TEST_F(FileStoreTest, SymlinkStayingInsideIsAllowed) {
  fs::create_directories(store_->root() / "real");
  fs::create_directory_symlink(store_->root() / "real", store_->root() / "alias");
  ASSERT_TRUE(store_->Write(Root() + "/alias", "x.jpg", "abc", "image/jpeg", nullptr).ok());
  EXPECT_EQ(ReadFile((store_->root() / "real/x.jpg").string()), "abc");
}

TEST_F(FileStoreTest, TargetThatIsADirectoryFailsPrecondition) {
  fs::create_directories(store_->root() / "taken.jpg");
  EXPECT_EQ(store_->Write(Root(), "taken.jpg", "abc", "image/jpeg", nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(FileStoreTest, CancelledBeforeWritingLeavesNothing) {
  absl::Status status =
      store_->Write(Root(), "c.jpg", "abc", "image/jpeg", [] { return true; }).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(fs::is_empty(store_->root()));
}

}  // namespace
}  // namespace conveyor::stages::upload
