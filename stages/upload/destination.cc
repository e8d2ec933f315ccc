#include "stages/upload/destination.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_details.h"
#include "stages/upload/object_key.h"

namespace conveyor::stages::upload {
namespace {

constexpr absl::string_view kField = "spec.destination";

absl::Status Bad(absl::string_view uri, absl::string_view why) {
  return InvalidField(
      kField, absl::StrCat(why, ", got \"", uri.substr(0, 200), uri.size() > 200 ? "...\"" : "\""));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<Destination> ParseFile(absl::string_view uri, absl::string_view rest) {
  // rest is what follows "file://": an authority (empty or localhost), then
  // the absolute path.
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) {
    return Bad(uri, "want file:///absolute/dir");
  }
  const absl::string_view host = rest.substr(0, slash);
  if (!host.empty() && !absl::EqualsIgnoreCase(host, "localhost")) {
    return Bad(uri, "want file:///absolute/dir on this worker, not another host");
  }
  const absl::string_view path = rest.substr(slash);
  std::string decoded;
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%') {
      const int hi = i + 2 < path.size() ? HexValue(path[i + 1]) : -1;
      const int lo = hi >= 0 ? HexValue(path[i + 2]) : -1;
      if (lo < 0) return Bad(uri, "bad %-escape in the path");
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return Bad(uri, "control character in the path");
    decoded.push_back(c);
  }
  return FileDestination{std::move(decoded)};
}

bool ValidBucket(absl::string_view bucket) {
  if (bucket.size() < 3 || bucket.size() > 63) return false;
  for (char c : bucket) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '.' && c != '-') return false;
  }
  const auto alnum = [](char c) { return absl::ascii_islower(c) || absl::ascii_isdigit(c); };
  return alnum(bucket.front()) && alnum(bucket.back());
}

absl::StatusOr<Destination> ParseS3(absl::string_view uri, absl::string_view rest) {
  const size_t slash = rest.find('/');
  S3Destination out;
  out.bucket = std::string(rest.substr(0, slash));
  if (!ValidBucket(out.bucket)) {
    return Bad(uri, "want s3://bucket[/prefix] with a bucket of 3..63 characters [a-z0-9.-]");
  }
  if (slash != absl::string_view::npos) {
    absl::string_view prefix = rest.substr(slash + 1);
    while (absl::ConsumeSuffix(&prefix, "/")) {
    }
    if (!prefix.empty()) {
      absl::Status valid = ValidateObjectKey(prefix, kField);
      if (!valid.ok()) return valid;
    }
    out.prefix = std::string(prefix);
  }
  return out;
}

}  // namespace

absl::StatusOr<Destination> ParseDestination(absl::string_view uri) {
  if (uri.empty()) return Bad(uri, "want file:///dir or s3://bucket[/prefix]");
  if (uri.find_first_of("?#") != absl::string_view::npos) {
    return Bad(uri, "a destination has no query or fragment");
  }
  absl::string_view rest = uri;
  if (absl::ConsumePrefix(&rest, "file://")) return ParseFile(uri, rest);
  if (absl::ConsumePrefix(&rest, "s3://")) return ParseS3(uri, rest);
  return Bad(uri, "want file:///dir or s3://bucket[/prefix]");
}

std::string JoinKey(absl::string_view prefix, absl::string_view key) {
  if (prefix.empty()) return std::string(key);
  return absl::StrCat(prefix, "/", key);
}

std::string EncodePath(absl::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out.push_back(c);
    } else {
      const auto u = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

std::string FileUri(absl::string_view absolute_path) {
  return absl::StrCat("file://", EncodePath(absolute_path));
}

std::string S3Uri(absl::string_view bucket, absl::string_view key) {
  return absl::StrCat("s3://", bucket, "/", key);
}

std::string S3ObjectUrl(absl::string_view endpoint, absl::string_view bucket, absl::string_view key,
                        bool virtual_host_style) {
  while (absl::ConsumeSuffix(&endpoint, "/")) {
  }
  if (!virtual_host_style) return absl::StrCat(endpoint, "/", bucket, "/", EncodePath(key));
  const size_t scheme_end = endpoint.find("://");
  const size_t host_at = scheme_end == absl::string_view::npos ? 0 : scheme_end + 3;
  return absl::StrCat(endpoint.substr(0, host_at), bucket, ".", endpoint.substr(host_at), "/",
                      EncodePath(key));
}

}  // namespace conveyor::stages::upload
