// PNG decode and encode with libpng (image_codec.h).
#include <png.h>

#include <cstring>
#include <string>
#include <vector>

#include "stages/common/image_codec_internal.h"

namespace conveyor::codec_internal {
namespace {

// zlib level 3: close to the size of level 6 at a fraction of its time.
constexpr int kPngCompressionLevel = 3;

struct PngReadSource {
  const uint8_t* data;
  size_t size;
  size_t offset;
};

void PngRead(png_structp png, png_bytep out, png_size_t length) {
  auto* source = static_cast<PngReadSource*>(png_get_io_ptr(png));
  if (length > source->size - source->offset) png_error(png, "PNG data is truncated");
  std::memcpy(out, source->data + source->offset, length);
  source->offset += length;
}

// libpng's default handlers print to stderr; errors still end in a longjmp.
[[noreturn]] void PngErrorExit(png_structp png, png_const_charp) { png_longjmp(png, 1); }
void PngSilence(png_structp, png_const_charp) {}

struct PngDecodeState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  png_infop end_info = nullptr;
  const DecodeLimits* limits = nullptr;
  DecodeReport report;
  PngReadSource source{};
  std::vector<png_bytep> rows;
  int orientation = 1;
  ~PngDecodeState() { png_destroy_read_struct(&png, &info, &end_info); }
};

// The transformations OpenCV 4.6's PngDecoder asks for with IMREAD_COLOR:
// 16-bit samples keep their high byte, alpha is dropped (not composited),
// palettes and low-depth gray expand, gray becomes three equal channels.
// Rows read between two checks of the call's cancellation and deadline.
constexpr png_uint_32 kPngRowsPerCheck = 64;
// Largest ancillary chunk a PNG may have (ICC profiles are well below), and
// how many ancillary chunks libpng keeps.
constexpr png_alloc_size_t kPngMaxChunkBytes = 8 << 20;
constexpr png_uint_32 kPngMaxChunks = 256;

// True if every chunk up to IEND fits in `bytes`. libpng allocates an
// ancillary chunk (eXIf, iCCP, zTXt ...) at the length it declares before
// reading it, before or after the image data, and Debian's 1.6.39 does not
// apply png_set_chunk_malloc_max to eXIf: 200-byte files whose eXIf declared
// 64 MiB and 1 GiB made it allocate that much (image_decode_fuzz; both are in
// its seed corpus). A chunk longer than the file is corrupt anyway.
bool PngChunksFit(absl::string_view bytes) {
  size_t at = 8;  // after the signature
  while (at + 8 <= bytes.size()) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
    const uint64_t length = (uint64_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    if (length + 12 > bytes.size() - at) return false;
    if (absl::string_view(bytes.data() + at + 4, 4) == "IEND") return true;
    at += static_cast<size_t>(length) + 12;
  }
  return true;
}

bool DecodePngInto(absl::string_view bytes, const ImageHeader& header, PngDecodeState& state,
                   cv::Mat& out) {
  if (!PngChunksFit(bytes)) {
    state.report.stop = DecodeStop::kCorrupt;
    return false;
  }
  state.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, PngErrorExit, PngSilence);
  if (state.png == nullptr) return false;
  // Bound what one ancillary chunk and all of them may take.
  png_set_chunk_malloc_max(state.png, kPngMaxChunkBytes);
  png_set_chunk_cache_max(state.png, kPngMaxChunks);
  state.info = png_create_info_struct(state.png);
  state.end_info = png_create_info_struct(state.png);
  if (state.info == nullptr || state.end_info == nullptr) return false;
  if (setjmp(png_jmpbuf(state.png)) != 0) {
    if (state.report.stop == DecodeStop::kNone) state.report.stop = DecodeStop::kCorrupt;
    return false;
  }
  state.source = {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 0};
  png_set_read_fn(state.png, &state.source, PngRead);
  png_read_info(state.png, state.info);
  png_uint_32 width = 0;
  png_uint_32 height = 0;
  int bit_depth = 0;
  int color_type = 0;
  png_get_IHDR(state.png, state.info, &width, &height, &bit_depth, &color_type, nullptr, nullptr,
               nullptr);
  state.report.stop = CheckDecoderSize(width, height, header, *state.limits, state.report);
  if (state.report.stop != DecodeStop::kNone) return false;
  // OpenCV reads an eXIf chunk placed before the image data.
  png_uint_32 exif_size = 0;
  png_bytep exif = nullptr;
  if (png_get_valid(state.png, state.info, PNG_INFO_eXIf) != 0 &&
      png_get_eXIf_1(state.png, state.info, &exif_size, &exif) != 0 && exif != nullptr &&
      exif_size > 0) {
    state.orientation = ExifOrientation(exif, exif_size);
  }
  if (bit_depth == 16) png_set_strip_16(state.png);
  png_set_strip_alpha(state.png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(state.png);
  if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(state.png);
  }
  if ((color_type & PNG_COLOR_MASK_COLOR) != 0) {
    png_set_bgr(state.png);
  } else {
    png_set_gray_to_rgb(state.png);
  }
  const int passes = png_set_interlace_handling(state.png);
  png_read_update_info(state.png, state.info);
  if (png_get_rowbytes(state.png, state.info) != size_t{width} * 3) {
    state.report.stop = DecodeStop::kCorrupt;
    return false;
  }
  out.create(static_cast<int>(height), static_cast<int>(width), CV_8UC3);
  // png_read_image row by row, so that a cancelled call stops mid-image.
  for (int pass = 0; pass < passes; ++pass) {
    for (png_uint_32 y = 0; y < height; ++y) {
      if (y % kPngRowsPerCheck == 0) {
        state.report.stop = CheckCallState(*state.limits);
        if (state.report.stop != DecodeStop::kNone) return false;
      }
      png_read_row(state.png, out.ptr<png_byte>(static_cast<int>(y)), nullptr);
    }
  }
  png_read_end(state.png, state.end_info);
  return true;
}

struct PngEncodeState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::vector<png_bytep> rows;
  std::string* out = nullptr;
  ~PngEncodeState() { png_destroy_write_struct(&png, &info); }
};

void PngWrite(png_structp png, png_bytep data, png_size_t length) {
  auto* state = static_cast<PngEncodeState*>(png_get_io_ptr(png));
  state->out->append(reinterpret_cast<const char*>(data), length);
}
void PngFlush(png_structp) {}

// imencode(".png", {IMWRITE_PNG_COMPRESSION, 3}): zlib level 3, default
// strategy and filters, no ancillary chunks. `image` is 8UC1 or 8UC3 (BGR).
bool EncodePngInto(const cv::Mat& image, PngEncodeState& state) {
  state.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, PngErrorExit, PngSilence);
  if (state.png == nullptr) return false;
  state.info = png_create_info_struct(state.png);
  if (state.info == nullptr) return false;
  if (setjmp(png_jmpbuf(state.png)) != 0) return false;
  png_set_write_fn(state.png, &state, PngWrite, PngFlush);
  png_set_compression_level(state.png, kPngCompressionLevel);
  png_set_compression_strategy(state.png, 0);  // Z_DEFAULT_STRATEGY
  const bool color = image.channels() == 3;
  png_set_IHDR(state.png, state.info, static_cast<png_uint_32>(image.cols),
               static_cast<png_uint_32>(image.rows), 8,
               color ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(state.png, state.info);
  png_set_bgr(state.png);
  state.rows.resize(static_cast<size_t>(image.rows));
  for (int y = 0; y < image.rows; ++y) state.rows[y] = const_cast<png_bytep>(image.ptr<png_byte>(y));
  png_write_image(state.png, state.rows.data());
  png_write_end(state.png, state.info);
  return true;
}

}  // namespace

bool DecodePng(absl::string_view bytes, const ImageHeader& header, const DecodeLimits& limits,
               DecodeReport& report, int& orientation, cv::Mat& out) {
  PngDecodeState state;
  state.limits = &limits;
  const bool decoded = DecodePngInto(bytes, header, state, out);
  report = state.report;
  orientation = state.orientation;
  return decoded;
}

bool EncodePng(const cv::Mat& image, std::string& out) {
  PngEncodeState state;
  state.out = &out;
  return EncodePngInto(image, state);
}

}  // namespace conveyor::codec_internal
