#include "absl/strings/string_view.h"
#include "common/image_header.h"

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace conveyor {
namespace {

uint32_t Be16(absl::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 8) | static_cast<uint8_t>(b[at + 1]);
}
uint32_t Be32(absl::string_view b, size_t at) { return (Be16(b, at) << 16) | Be16(b, at + 2); }
uint32_t Le16(absl::string_view b, size_t at) {
  return static_cast<uint8_t>(b[at]) | (uint32_t{static_cast<uint8_t>(b[at + 1])} << 8);
}
uint32_t Le24(absl::string_view b, size_t at) {
  return Le16(b, at) | (uint32_t{static_cast<uint8_t>(b[at + 2])} << 16);
}
uint32_t Le32(absl::string_view b, size_t at) { return Le16(b, at) | (Le16(b, at + 2) << 16); }

absl::Status Truncated(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("truncated ", what, " header"));
}

absl::StatusOr<ImageHeader> Checked(ImageKind kind, uint32_t width, uint32_t height) {
  if (width == 0 || height == 0 || width > INT32_MAX || height > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(MediaTypeOf(kind), " header declares ",
                                                   width, "x", height, " pixels"));
  }
  return ImageHeader{kind, static_cast<int32_t>(width), static_cast<int32_t>(height)};
}

absl::Status Malformed(size_t offset, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed JPEG header at byte ", offset, ": ", what));
}

// Walks the marker segments up to the first start-of-frame, which holds the
// size, reading markers exactly as libjpeg's read_markers/next_marker
// (jdmarker.c) do, so the two cannot see different frames: FF fill bytes
// before a marker are skipped; RSTn and TEM stand alone; every other marker
// has a 2-byte length that counts itself. Where libjpeg would skip bytes
// with only a warning (anything but FF between segments, or a stuffed FF 00)
// we refuse the file instead: a second reading of the same bytes is how a
// header that says 16x16 could decode as 32768x32768.
absl::StatusOr<ImageHeader> ParseJpeg(absl::string_view b) {
  size_t at = 2;  // after SOI (FF D8)
  for (;;) {
    if (at >= b.size()) return Truncated("JPEG");
    if (static_cast<uint8_t>(b[at]) != 0xFF) {
      return Malformed(at, absl::StrCat("want a marker (0xFF), got 0x",
                                        absl::Hex(static_cast<uint8_t>(b[at]), absl::kZeroPad2),
                                        "; data between segments is not allowed"));
    }
    const size_t marker_at = at;
    while (at < b.size() && static_cast<uint8_t>(b[at]) == 0xFF) ++at;  // fill bytes
    if (at >= b.size()) return Truncated("JPEG");
    const uint8_t marker = static_cast<uint8_t>(b[at]);
    ++at;
    if (marker == 0x00) {
      return Malformed(marker_at, "stuffed 0xFF 0x00 between segments (only valid in scan data)");
    }
    if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) continue;  // RSTn, TEM
    if (marker == 0xD8) return Malformed(marker_at, "a second start-of-image marker");
    if (marker == 0xD9) return Malformed(marker_at, "end of image before any frame header");
    if (marker == 0xDA) return Malformed(marker_at, "scan before any frame header");
    const bool decodable_sof = marker == 0xC0 || marker == 0xC1 || marker == 0xC2 ||
                               marker == 0xC9 || marker == 0xCA;
    const bool other_sof = marker == 0xC3 || (marker >= 0xC5 && marker <= 0xC7) ||
                           marker == 0xC8 || marker == 0xCB ||
                           (marker >= 0xCD && marker <= 0xCF);
    const bool segment = marker == 0xC4 || marker == 0xCC || marker == 0xDB || marker == 0xDC ||
                         marker == 0xDD || (marker >= 0xE0 && marker <= 0xEF) || marker == 0xFE;
    if (other_sof) {
      return Malformed(marker_at, absl::StrCat("frame type SOF", marker - 0xC0,
                                               " (lossless/hierarchical) is not supported"));
    }
    if (!decodable_sof && !segment) {
      return Malformed(marker_at, absl::StrCat("unknown marker 0xFF 0x",
                                               absl::Hex(marker, absl::kZeroPad2)));
    }
    if (at + 2 > b.size()) return Truncated("JPEG");
    const uint32_t length = Be16(b, at);
    if (length < 2) return Malformed(marker_at, absl::StrCat("segment length ", length));
    if (decodable_sof) {
      // LL LL P HH HH WW WW N
      if (length < 8 || at + 7 > b.size()) return Truncated("JPEG");
      return Checked(ImageKind::kJpeg, Be16(b, at + 5), Be16(b, at + 3));
    }
    if (at + length > b.size()) return Truncated("JPEG");
    at += length;
  }
}

absl::StatusOr<ImageHeader> ParsePng(absl::string_view b) {
  // Signature (8) + IHDR length (4) + "IHDR" (4) + width (4) + height (4).
  if (b.size() < 24 || b.substr(12, 4) != "IHDR") return Truncated("PNG");
  return Checked(ImageKind::kPng, Be32(b, 16), Be32(b, 20));
}

absl::StatusOr<ImageHeader> ParseWebp(absl::string_view b) {
  if (b.size() < 30) return Truncated("WebP");
  absl::string_view chunk = b.substr(12, 4);
  if (chunk == "VP8 ") {
    // Frame tag (3) then start code 9d 01 2a, then 14-bit width and height.
    if (static_cast<uint8_t>(b[23]) != 0x9d || static_cast<uint8_t>(b[24]) != 0x01 ||
        static_cast<uint8_t>(b[25]) != 0x2a) {
      return Truncated("WebP VP8");
    }
    return Checked(ImageKind::kWebp, Le16(b, 26) & 0x3fff, Le16(b, 28) & 0x3fff);
  }
  if (chunk == "VP8L") {
    if (static_cast<uint8_t>(b[20]) != 0x2f) return Truncated("WebP VP8L");
    uint32_t bits = Le32(b, 21);
    return Checked(ImageKind::kWebp, (bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1);
  }
  if (chunk == "VP8X") {
    return Checked(ImageKind::kWebp, Le24(b, 24) + 1, Le24(b, 27) + 1);
  }
  return Truncated("WebP");
}

}  // namespace

absl::string_view MediaTypeOf(ImageKind kind) {
  switch (kind) {
    case ImageKind::kJpeg: return "image/jpeg";
    case ImageKind::kPng: return "image/png";
    case ImageKind::kWebp: return "image/webp";
  }
  return "application/octet-stream";
}

absl::string_view ExtensionOf(ImageKind kind) {
  switch (kind) {
    case ImageKind::kJpeg: return "jpg";
    case ImageKind::kPng: return "png";
    case ImageKind::kWebp: return "webp";
  }
  return "bin";
}

absl::StatusOr<ImageHeader> ParseImageHeader(absl::string_view bytes) {
  if (bytes.size() >= 3 && std::memcmp(bytes.data(), "\xFF\xD8\xFF", 3) == 0) {
    return ParseJpeg(bytes);
  }
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0) {
    return ParsePng(bytes);
  }
  if (bytes.size() >= 12 && bytes.substr(0, 4) == "RIFF" && bytes.substr(8, 4) == "WEBP") {
    return ParseWebp(bytes);
  }
  absl::string_view head = bytes.substr(0, 8);
  return absl::InvalidArgumentError(
      absl::StrCat("not an image: the bytes start with \"", absl::CHexEscape(head),
                   "\", which is no JPEG, PNG or WebP signature"));
}

}  // namespace conveyor
