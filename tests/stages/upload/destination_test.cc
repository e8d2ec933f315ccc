#include "stages/upload/destination.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"

namespace conveyor::stages::upload {
namespace {

TEST(DestinationTest, ParsesFileUri) {
  absl::StatusOr<Destination> d = ParseDestination("file:///srv/objects/thumbs");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(std::holds_alternative<FileDestination>(*d));
  EXPECT_EQ(std::get<FileDestination>(*d).dir, "/srv/objects/thumbs");
}

TEST(DestinationTest, FileUriAcceptsLocalhostAndDecodesEscapes) {
  absl::StatusOr<Destination> d = ParseDestination("file://localhost/srv/my%20dir");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(std::get<FileDestination>(*d).dir, "/srv/my dir");
}

TEST(DestinationTest, ParsesS3UriWithAndWithoutPrefix) {
  absl::StatusOr<Destination> bare = ParseDestination("s3://my-bucket");
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(std::get<S3Destination>(*bare).bucket, "my-bucket");
  EXPECT_EQ(std::get<S3Destination>(*bare).prefix, "");

  absl::StatusOr<Destination> prefixed = ParseDestination("s3://my.bucket-2/a/b/");
  ASSERT_TRUE(prefixed.ok()) << prefixed.status();
  EXPECT_EQ(std::get<S3Destination>(*prefixed).bucket, "my.bucket-2");
  EXPECT_EQ(std::get<S3Destination>(*prefixed).prefix, "a/b");
}

TEST(DestinationTest, RejectsBadUrisNamingTheField) {
  for (const char* bad : {"", "/srv/objects", "http://host/x", "file://otherhost/srv", "file://",
                          "file:relative", "file:///srv?x=1", "file:///srv#frag", "file:///bad%zz",
                          "file:///nul%00here", "s3://", "s3://ab", "s3://Upper", "s3://-bucket",
                          "s3://bucket_x", "s3://bucket/../x", "s3://bucket//x", "S3://bucket"}) {
    absl::StatusOr<Destination> d = ParseDestination(bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StartsWith(d.status().message(), "spec.destination:"))
        << bad << ": " << d.status();
  }
}

TEST(DestinationTest, JoinsPrefixAndKey) {
  EXPECT_EQ(JoinKey("", "k.jpg"), "k.jpg");
  EXPECT_EQ(JoinKey("a/b", "k.jpg"), "a/b/k.jpg");
}

TEST(DestinationTest, EncodesPathsKeepingSlashes) {
  EXPECT_EQ(EncodePath("/a b/ü+x~y_z.jpg"), "/a%20b/%C3%BC%2Bx~y_z.jpg");
  EXPECT_EQ(FileUri("/srv/a b.jpg"), "file:///srv/a%20b.jpg");
  EXPECT_EQ(S3Uri("bkt", "a/b.jpg"), "s3://bkt/a/b.jpg");
}

TEST(DestinationTest, BuildsPathAndVirtualHostUrls) {
  EXPECT_EQ(S3ObjectUrl("http://127.0.0.1:4568", "bkt", "a/b c.jpg", false),
            "http://127.0.0.1:4568/bkt/a/b%20c.jpg");
  EXPECT_EQ(S3ObjectUrl("https://s3.example.com/", "bkt", "k.png", false),
            "https://s3.example.com/bkt/k.png");
  EXPECT_EQ(S3ObjectUrl("https://s3.example.com", "bkt", "k.png", true),
            "https://bkt.s3.example.com/k.png");
}

}  // namespace
}  // namespace conveyor::stages::upload
