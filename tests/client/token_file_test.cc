// The token file: refused when others may read it, stripped, written 0600.
#include "client/token_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/testing/process_fixture.h"

namespace conveyor::client {
namespace {

using ::conveyor::testing::TempDir;
using ::conveyor::testing::WriteFile;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

mode_t ModeOf(const std::string& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

class TokenFileTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  TempDir dir_;
};

TEST_F(TokenFileTest, StripsTrailingWhitespaceAndNewline) {
  absl::StatusOr<std::string> token =
      ReadTokenFile(WriteFile(Path("t"), "s3cr3t-T0k\r\n \t\n", 0600));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "s3cr3t-T0k");
}

TEST_F(TokenFileTest, AcceptsOwnerOnlyModes) {
  EXPECT_TRUE(ReadTokenFile(WriteFile(Path("a"), "tok\n", 0600)).ok());
  EXPECT_TRUE(ReadTokenFile(WriteFile(Path("b"), "tok\n", 0400)).ok());
}

TEST_F(TokenFileTest, RefusesFilesGroupOrOthersCanAccess) {
  for (const mode_t mode : {0644, 0640, 0604, 0660, 0620, 0601}) {
    const std::string path = WriteFile(Path("t"), "tok-value\n", mode);
    absl::StatusOr<std::string> token = ReadTokenFile(path);
    EXPECT_EQ(token.status().code(), absl::StatusCode::kFailedPrecondition) << std::oct << mode;
    char octal[8];
    std::snprintf(octal, sizeof(octal), "%04o", mode);
    EXPECT_THAT(std::string(token.status().message()),
                AllOf(HasSubstr(octal), HasSubstr(path), HasSubstr("chmod 600"),
                      Not(HasSubstr("tok-value"))));
  }
}

TEST_F(TokenFileTest, MissingFileIsNotFound) {
  EXPECT_EQ(ReadTokenFile(Path("none")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadTokenFile(Path("none/deeper")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TokenFileTest, UnreadableFileIsPermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads a mode 0000 file";
  EXPECT_EQ(ReadTokenFile(WriteFile(Path("t"), "tok\n", 0000)).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TokenFileTest, RefusesEmptyFileAndDirectory) {
  EXPECT_EQ(ReadTokenFile(WriteFile(Path("empty"), " \n\n", 0600)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const std::string sub = Path("dir");
  std::filesystem::create_directory(sub);
  ::chmod(sub.c_str(), 0700);
  absl::StatusOr<std::string> token = ReadTokenFile(sub);
  EXPECT_EQ(token.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(token.status().message()), HasSubstr("not a regular file"));
}

TEST_F(TokenFileTest, RefusesTwoLinesWithoutSayingTheToken) {
  absl::StatusOr<std::string> token = ReadTokenFile(WriteFile(Path("t"), "first\nsecond\n", 0600));
  EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(token.status().message()),
              AllOf(HasSubstr("offset 5"), Not(HasSubstr("first")), Not(HasSubstr("second"))));
}

TEST_F(TokenFileTest, RefusesFileOverTheLimit) {
  EXPECT_TRUE(
      ReadTokenFile(WriteFile(Path("max"), std::string(kMaxTokenFileBytes, 'a'), 0600)).ok());
  EXPECT_EQ(ReadTokenFile(WriteFile(Path("big"), std::string(kMaxTokenFileBytes + 1, 'a'), 0600))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CheckTokenValueTest, AllowsPrintableAsciiOnly) {
  EXPECT_TRUE(CheckTokenValue("eyJhbGciOi.J9-_~+/=").ok());
  EXPECT_EQ(CheckTokenValue("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckTokenValue("a b").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckTokenValue("a\tb").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckTokenValue("caf\xc3\xa9").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckTokenValue("a\x7f").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenFileTest, WritesOwnerOnlyFileAndDirectories) {
  const std::string path = Path("config/conveyor/token");
  // A umask that would leave the owner unable to read what it wrote.
  const mode_t old_umask = ::umask(0277);
  const absl::Status written = WriteNewTokenFile(path, "abc123");
  ::umask(old_umask);
  ASSERT_TRUE(written.ok()) << written;
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(ModeOf(Path("config/conveyor")), 0700u);
  EXPECT_EQ(ModeOf(Path("config")), 0700u);
  absl::StatusOr<std::string> back = ReadTokenFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, "abc123");
}

TEST_F(TokenFileTest, NeverReplacesAFileOrFollowsALink) {
  const std::string path = WriteFile(Path("token"), "old\n", 0600);
  EXPECT_EQ(WriteNewTokenFile(path, "new").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(*ReadTokenFile(path), "old");

  const std::string target = Path("elsewhere");
  const std::string link = Path("link");
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_EQ(WriteNewTokenFile(link, "new").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(std::filesystem::exists(target));
}

TEST_F(TokenFileTest, WriteFailureNamesThePathAndTheReasonOnce) {
  const std::string file = WriteFile(Path("file"), "x", 0600);
  const absl::Status written = WriteNewTokenFile(file + "/conveyor/token", "tok");
  EXPECT_FALSE(written.ok());
  const std::string message(written.message());
  EXPECT_THAT(message, HasSubstr("cannot create directory \"" + file + "/conveyor\": "));
  const std::string reason = std::strerror(ENOTDIR);
  ASSERT_NE(message.find(reason), std::string::npos) << message;
  EXPECT_EQ(message.find(reason), message.rfind(reason)) << message;
}

TEST_F(TokenFileTest, WriteRefusesABadToken) {
  EXPECT_EQ(WriteNewTokenFile(Path("t"), "two words").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(Path("t")));
}

}  // namespace
}  // namespace conveyor::client
