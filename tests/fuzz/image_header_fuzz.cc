// Differential fuzzing of the header parser (common/image_header.h)
// against the decoders' own header reads: jpeg_read_header, png_read_info and
// WebPGetFeatures. The header check exists to predict what the decoder will
// do (the decompression-bomb guard trusts its size), so whenever both accept
// the bytes they must agree on format and dimensions; a disagreement aborts
// (a finding: issue 10's "JPEG header desync" is one). The decoder refusing
// bytes our parser accepts is not a finding: the decode then fails cleanly.
#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/image_header.h"

namespace {

struct Size {
  bool ok = false;
  uint32_t width = 0;
  uint32_t height = 0;
};

struct JpegError {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
};

void JpegErrorExit(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<JpegError*>(cinfo->err)->jump, 1);
}
void JpegSilent(j_common_ptr) {}

Size LibjpegSize(absl::string_view bytes) {
  jpeg_decompress_struct cinfo;
  JpegError error;
  cinfo.err = jpeg_std_error(&error.manager);
  error.manager.error_exit = JpegErrorExit;
  error.manager.output_message = JpegSilent;
  // Everything touched after setjmp is volatile or set before it.
  volatile bool created = false;
  Size size;
  if (setjmp(error.jump) != 0) {
    if (created) jpeg_destroy_decompress(&cinfo);
    return Size{};
  }
  jpeg_create_decompress(&cinfo);
  created = true;
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  if (jpeg_read_header(&cinfo, TRUE) == JPEG_HEADER_OK) {
    size = Size{true, cinfo.image_width, cinfo.image_height};
  }
  jpeg_destroy_decompress(&cinfo);
  return size;
}

struct PngSource {
  absl::string_view bytes;
  size_t at = 0;
};

void PngRead(png_structp png, png_bytep out, png_size_t length) {
  auto* source = static_cast<PngSource*>(png_get_io_ptr(png));
  if (source->bytes.size() - source->at < length) png_error(png, "truncated");
  std::memcpy(out, source->bytes.data() + source->at, length);
  source->at += length;
}
void PngSilent(png_structp, png_const_charp) {}
void PngErrorExit(png_structp png, png_const_charp) { png_longjmp(png, 1); }

Size LibpngSize(absl::string_view bytes) {
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, PngErrorExit, PngSilent);
  if (png == nullptr) return Size{};
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return Size{};
  }
  // Only the signature and the IHDR chunk: libpng allocates some ancillary
  // chunks (eXIf) at their declared length, up to 2 GiB, before reading
  // them, and the size is all the harness wants. png_read_info then fails on
  // the missing next chunk, after it has checked and stored IHDR.
  PngSource source{bytes.substr(0, 8 + 8 + 13 + 4)};
  Size size;
  if (setjmp(png_jmpbuf(png)) != 0) {
    // Zero until libpng has accepted an IHDR (it refuses zero sizes).
    const png_uint_32 width = png_get_image_width(png, info);
    const png_uint_32 height = png_get_image_height(png, info);
    if (width != 0 && height != 0) size = Size{true, width, height};
    png_destroy_read_struct(&png, &info, nullptr);
    return size;
  }
  png_set_read_fn(png, &source, PngRead);
  png_read_info(png, info);
  size = Size{true, png_get_image_width(png, info), png_get_image_height(png, info)};
  png_destroy_read_struct(&png, &info, nullptr);
  return size;
}

Size LibwebpSize(absl::string_view bytes) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &features) !=
      VP8_STATUS_OK) {
    return Size{};
  }
  return Size{true, static_cast<uint32_t>(features.width), static_cast<uint32_t>(features.height)};
}

[[noreturn]] void Disagree(const char* library, const conveyor::ImageHeader& ours,
                           const Size& theirs) {
  std::fprintf(stderr,
               "image_header_fuzz: DISAGREEMENT: ParseImageHeader says %s %dx%d, %s says "
               "%ux%u\n",
               conveyor::MediaTypeOf(ours.kind).data(), ours.width, ours.height, library,
               theirs.width, theirs.height);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<conveyor::ImageHeader> ours = conveyor::ParseImageHeader(bytes);
  if (!ours.ok()) return 0;
  if (ours->width <= 0 || ours->height <= 0) {
    std::fprintf(stderr, "image_header_fuzz: accepted a %dx%d image\n", ours->width,
                 ours->height);
    std::abort();
  }
  const char* library = "";
  Size theirs;
  switch (ours->kind) {
    case conveyor::ImageKind::kJpeg:
      library = "jpeg_read_header";
      theirs = LibjpegSize(bytes);
      break;
    case conveyor::ImageKind::kPng:
      library = "png_read_info";
      theirs = LibpngSize(bytes);
      break;
    case conveyor::ImageKind::kWebp:
      library = "WebPGetFeatures";
      theirs = LibwebpSize(bytes);
      break;
  }
  if (theirs.ok && (theirs.width != static_cast<uint32_t>(ours->width) ||
                    theirs.height != static_cast<uint32_t>(ours->height))) {
    Disagree(library, *ours, theirs);
  }
  return 0;
}
