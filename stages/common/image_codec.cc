#include "stages/common/image_codec.h"

// libjpeg's headers need size_t and FILE declared first.
#include <algorithm>
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>
#include <webp/encode.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_details.h"

namespace conveyor {
namespace {

// libwebp's WEBP_MAX_DIMENSION.
constexpr int kMaxWebpSide = 16383;
// OpenCV's CV_IO_MAX_IMAGE_WIDTH/HEIGHT and CV_IO_MAX_IMAGE_PIXELS: imdecode
// refused larger images, so we still do, whatever --max-pixels allows.
constexpr int64_t kMaxDecodeSide = int64_t{1} << 20;
constexpr int64_t kMaxDecodePixels = int64_t{1} << 30;
// zlib level 3: close to the size of level 6 at a fraction of its time.
constexpr int kPngCompressionLevel = 3;

// --- EXIF orientation ---------------------------------------------------------

// The TIFF Orientation tag of IFD0 in `tiff` (the bytes after "Exif\0\0" in a
// JPEG APP1, or a PNG eXIf chunk), or 1 (no change). Reads as OpenCV 4.6's
// ExifReader does, so images turn exactly as imdecode turned them: byte order
// little-endian only for "II" (anything else reads big-endian), magic 42, the
// first Orientation entry wins, its SHORT value is taken whatever the declared
// type, and a read past the end ends the parse keeping what was found.
int ExifOrientation(const uint8_t* tiff, size_t size) {
  const bool little_endian = size >= 2 && tiff[0] == 'I' && tiff[1] == 'I';
  auto u16 = [&](size_t offset, uint32_t& out) {
    if (offset + 1 >= size) return false;
    out = little_endian ? tiff[offset] | tiff[offset + 1] << 8
                        : tiff[offset] << 8 | tiff[offset + 1];
    return true;
  };
  uint32_t magic = 0;
  uint32_t hi = 0;
  uint32_t lo = 0;
  if (!u16(2, magic) || magic != 0x2A) return 1;
  if (size < 8) return 1;
  if (!u16(little_endian ? 6 : 4, hi) || !u16(little_endian ? 4 : 6, lo)) return 1;
  size_t offset = size_t{hi} << 16 | lo;
  uint32_t entries = 0;
  if (!u16(offset, entries)) return 1;
  offset += 2;
  constexpr uint32_t kOrientationTag = 0x0112;
  constexpr size_t kEntryBytes = 12;
  for (uint32_t i = 0; i < entries; ++i, offset += kEntryBytes) {
    uint32_t tag = 0;
    if (!u16(offset, tag)) return 1;
    if (tag != kOrientationTag) continue;
    uint32_t value = 0;
    if (!u16(offset + 8, value)) return 1;
    return static_cast<int>(value);
  }
  return 1;
}

// Turns `image` upright as OpenCV's ApplyExifOrientation does (TIFF values
// 1..8; anything else leaves the image as stored).
void ApplyOrientation(int orientation, cv::Mat& image) {
  switch (orientation) {
    case 2: cv::flip(image, image, 1); break;
    case 3: cv::rotate(image, image, cv::ROTATE_180); break;
    case 4: cv::flip(image, image, 0); break;
    case 5: cv::transpose(image, image); break;
    case 6: cv::rotate(image, image, cv::ROTATE_90_CLOCKWISE); break;
    case 7:
      cv::transpose(image, image);
      cv::flip(image, image, -1);
      break;
    case 8: cv::rotate(image, image, cv::ROTATE_90_COUNTERCLOCKWISE); break;
    default: break;
  }
}

// --- limits shared by the three decoders ------------------------------------------

// Why a decode stopped early; the status is built once the codec's state
// (and its longjmp) is left behind.
enum class DecodeStop { kNone, kCorrupt, kTooLarge, kMismatch, kTooManyScans, kCancelled, kDeadline };

// What a decoder found and why it stopped, filled in by the codec paths.
struct DecodeReport {
  DecodeStop stop = DecodeStop::kNone;
  int64_t width = 0;   // the decoder's own size, once read
  int64_t height = 0;
  int scans = 0;       // JPEG scans seen when refused
};

// The decoder's own view of the size, checked before a pixel is allocated:
// the header parser and the codec must agree, and the codec's size must be
// inside the limits whatever the header said.
DecodeStop CheckDecoderSize(int64_t width, int64_t height, const ImageHeader& header,
                            const DecodeLimits& limits, DecodeReport& report) {
  report.width = width;
  report.height = height;
  if (width > limits.max_side || height > limits.max_side || width > kMaxDecodeSide ||
      height > kMaxDecodeSide || width * height > limits.max_pixels ||
      width * height > kMaxDecodePixels) {
    return DecodeStop::kTooLarge;
  }
  if (width != header.width || height != header.height) return DecodeStop::kMismatch;
  return DecodeStop::kNone;
}

// Polled between units of decode work (JPEG iMCU rows and scans, PNG rows,
// WebP input chunks).
DecodeStop CheckCallState(const DecodeLimits& limits) {
  if (limits.deadline != absl::InfiniteFuture() && absl::Now() >= limits.deadline) {
    return DecodeStop::kDeadline;
  }
  if (limits.cancelled && limits.cancelled()) return DecodeStop::kCancelled;
  return DecodeStop::kNone;
}

// --- JPEG (libjpeg-turbo) -------------------------------------------------------

// libjpeg reports fatal errors through error_exit, which must not return:
// jump back to the setjmp in the function that owns the codec object.
struct JpegErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
};

[[noreturn]] void JpegErrorExit(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<JpegErrorManager*>(cinfo->err)->jump, 1);
}

// Warnings ("Corrupt JPEG data: premature end of data segment") are not
// errors, as in imdecode; they must not reach stderr next to our log lines.
void JpegSilence(j_common_ptr) {}

// The decode state lives in the caller so that nothing with a destructor sits
// between setjmp and longjmp.
struct JpegDecodeState;

// libjpeg calls progress_monitor once per iMCU row absorbed or output and at
// every scan boundary, so it sees each scan of a progressive file and can
// stop one that is not worth its CPU.
struct JpegProgress {
  jpeg_progress_mgr pub;
  JpegDecodeState* state;
};

struct JpegDecodeState {
  jpeg_decompress_struct cinfo;
  JpegErrorManager error;
  JpegProgress progress;
  const DecodeLimits* limits = nullptr;
  DecodeReport report;
  std::vector<JSAMPROW> rows;
  cv::Mat cmyk;  // only for 4-component (CMYK/YCCK) files
  int orientation = 1;
  bool created = false;
  // Frees libjpeg's memory on every path, cv::Mat::create throwing included.
  ~JpegDecodeState() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

// OpenCV's icvCvt_CMYK2BGR_8u_C4C3R: libjpeg hands Adobe's inverted CMYK.
void CmykToBgr(const cv::Mat& cmyk, cv::Mat& bgr) {
  for (int y = 0; y < cmyk.rows; ++y) {
    const uint8_t* in = cmyk.ptr<uint8_t>(y);
    uint8_t* out = bgr.ptr<uint8_t>(y);
    for (int x = 0; x < cmyk.cols; ++x, in += 4, out += 3) {
      const int k = in[3];
      out[2] = static_cast<uint8_t>(k - ((255 - in[0]) * k >> 8));
      out[1] = static_cast<uint8_t>(k - ((255 - in[1]) * k >> 8));
      out[0] = static_cast<uint8_t>(k - ((255 - in[2]) * k >> 8));
    }
  }
}

void JpegProgressMonitor(j_common_ptr common) {
  auto* progress = reinterpret_cast<JpegProgress*>(common->progress);
  JpegDecodeState& state = *progress->state;
  // input_scan_number counts the SOS markers read so far: a scan bomb (many
  // tiny or empty scans, each costing a pass over every coefficient) is
  // stopped at the limit, whatever the file size.
  const int scans = state.cinfo.input_scan_number;
  DecodeStop stop = scans > state.limits->max_scans ? DecodeStop::kTooManyScans
                                                    : CheckCallState(*state.limits);
  if (stop == DecodeStop::kNone) return;
  state.report.stop = stop;
  state.report.scans = scans;
  std::longjmp(state.error.jump, 1);
}

// Runs libjpeg over `bytes` into `out` (8UC3 BGR). False on a fatal libjpeg
// error or a refusal (state.report.stop says which). May throw cv::Exception
// or std::bad_alloc from cv::Mat::create.
bool DecodeJpegInto(absl::string_view bytes, const ImageHeader& header, int reduce,
                    JpegDecodeState& state, cv::Mat& out) {
  jpeg_decompress_struct& cinfo = state.cinfo;
  cinfo.err = jpeg_std_error(&state.error.pub);
  state.error.pub.error_exit = JpegErrorExit;
  state.error.pub.output_message = JpegSilence;
  jpeg_create_decompress(&cinfo);
  state.created = true;
  state.progress.pub.progress_monitor = JpegProgressMonitor;
  state.progress.state = &state;
  cinfo.progress = &state.progress.pub;
  if (setjmp(state.error.jump) != 0) {
    if (state.report.stop == DecodeStop::kNone) state.report.stop = DecodeStop::kCorrupt;
    return false;
  }
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  // Keep APP1 (Exif) markers for the orientation, as OpenCV's decoder does.
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&cinfo, TRUE);
  // libjpeg's own frame header, before any buffer exists.
  state.report.stop = CheckDecoderSize(cinfo.image_width, cinfo.image_height, header,
                                       *state.limits, state.report);
  if (state.report.stop != DecodeStop::kNone) return false;
  // The same DCT scaling as IMREAD_REDUCED_COLOR_<reduce>: sides round up.
  cinfo.scale_num = 1;
  cinfo.scale_denom = static_cast<unsigned int>(reduce);
  const bool cmyk = cinfo.num_components == 4;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_BGR;
  jpeg_calc_output_dimensions(&cinfo);
  const int width = static_cast<int>(cinfo.output_width);
  const int height = static_cast<int>(cinfo.output_height);
  out.create(height, width, CV_8UC3);
  cv::Mat& target = cmyk ? state.cmyk : out;
  if (cmyk) target.create(height, width, CV_8UC4);
  state.rows.resize(static_cast<size_t>(height));
  for (int y = 0; y < height; ++y) state.rows[y] = target.ptr<JSAMPLE>(y);

  jpeg_start_decompress(&cinfo);
  while (cinfo.output_scanline < cinfo.output_height) {
    // With jpeg_mem_src libjpeg never suspends: data cut short ends in a
    // warning and mid-gray rows (imdecode's suspending source left them
    // unwritten), never in a loop without progress.
    jpeg_read_scanlines(&cinfo, &state.rows[cinfo.output_scanline],
                        cinfo.output_height - cinfo.output_scanline);
  }
  for (jpeg_saved_marker_ptr marker = cinfo.marker_list; marker != nullptr;
       marker = marker->next) {
    if (marker->marker != JPEG_APP0 + 1) continue;
    // OpenCV skips "Exif\0\0" without checking it, and reads only the first
    // APP1 (an XMP APP1 first hides a later Exif one).
    constexpr size_t kExifHeaderBytes = 6;
    if (marker->data_length > kExifHeaderBytes) {
      state.orientation = ExifOrientation(marker->data + kExifHeaderBytes,
                                          marker->data_length - kExifHeaderBytes);
    }
    break;
  }
  jpeg_finish_decompress(&cinfo);
  if (cmyk) CmykToBgr(state.cmyk, out);
  return true;
}

// Appends libjpeg's output to a string in 16 KiB steps.
struct JpegStringDestination {
  jpeg_destination_mgr pub;
  std::string* out;
  JOCTET buffer[16384];
};

void JpegInitDestination(j_compress_ptr cinfo) {
  auto* dest = reinterpret_cast<JpegStringDestination*>(cinfo->dest);
  dest->pub.next_output_byte = dest->buffer;
  dest->pub.free_in_buffer = sizeof(dest->buffer);
}

boolean JpegEmptyOutputBuffer(j_compress_ptr cinfo) {
  auto* dest = reinterpret_cast<JpegStringDestination*>(cinfo->dest);
  dest->out->append(reinterpret_cast<const char*>(dest->buffer), sizeof(dest->buffer));
  JpegInitDestination(cinfo);
  return TRUE;
}

void JpegTermDestination(j_compress_ptr cinfo) {
  auto* dest = reinterpret_cast<JpegStringDestination*>(cinfo->dest);
  dest->out->append(reinterpret_cast<const char*>(dest->buffer),
                    sizeof(dest->buffer) - dest->pub.free_in_buffer);
}

struct JpegEncodeState {
  jpeg_compress_struct cinfo;
  JpegErrorManager error;
  JpegStringDestination destination;
  std::vector<JSAMPROW> rows;
  bool created = false;
  ~JpegEncodeState() {
    if (created) jpeg_destroy_compress(&cinfo);
  }
};

// `image` is 8UC1 or 8UC3 (BGR). False on a libjpeg error.
bool EncodeJpegInto(const cv::Mat& image, int quality, JpegEncodeState& state,
                    std::string& out) {
  jpeg_compress_struct& cinfo = state.cinfo;
  cinfo.err = jpeg_std_error(&state.error.pub);
  state.error.pub.error_exit = JpegErrorExit;
  state.error.pub.output_message = JpegSilence;
  jpeg_create_compress(&cinfo);
  state.created = true;
  if (setjmp(state.error.jump) != 0) {
    return false;
  }
  state.destination.pub.init_destination = JpegInitDestination;
  state.destination.pub.empty_output_buffer = JpegEmptyOutputBuffer;
  state.destination.pub.term_destination = JpegTermDestination;
  state.destination.out = &out;
  cinfo.dest = &state.destination.pub;
  cinfo.image_width = static_cast<JDIMENSION>(image.cols);
  cinfo.image_height = static_cast<JDIMENSION>(image.rows);
  const bool color = image.channels() == 3;
  cinfo.input_components = color ? 3 : 1;
  cinfo.in_color_space = color ? JCS_EXT_BGR : JCS_GRAYSCALE;
  // What imencode(".jpg", {IMWRITE_JPEG_QUALITY, q}) set: baseline tables,
  // 4:2:0, not progressive, no optimized Huffman tables, no restarts.
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  state.rows.resize(static_cast<size_t>(image.rows));
  for (int y = 0; y < image.rows; ++y) {
    state.rows[y] = const_cast<JSAMPLE*>(image.ptr<JSAMPLE>(y));
  }
  while (cinfo.next_scanline < cinfo.image_height) {
    jpeg_write_scanlines(&cinfo, &state.rows[cinfo.next_scanline],
                         cinfo.image_height - cinfo.next_scanline);
  }
  jpeg_finish_compress(&cinfo);
  return true;
}

// --- PNG (libpng) ---------------------------------------------------------------

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

// --- shared ---------------------------------------------------------------------

absl::Status CannotDecode(absl::string_view field, ImageKind kind) {
  return WithErrorReason(
      InvalidField(field, absl::StrCat("cannot decode the ", MediaTypeOf(kind),
                                       " data (corrupt or truncated)")),
      kReasonNotAnImage);
}

// The status of a decode that `report` says was stopped.
absl::Status StoppedDecode(const DecodeReport& report, const ImageHeader& header,
                           const DecodeLimits& limits, absl::string_view field) {
  const absl::string_view media_type = MediaTypeOf(header.kind);
  switch (report.stop) {
    case DecodeStop::kNone:
    case DecodeStop::kCorrupt:
      return CannotDecode(field, header.kind);
    case DecodeStop::kTooLarge:
      return WithErrorReason(
          InvalidField(field, absl::StrCat("the ", media_type, " decoder reads ", report.width,
                                           "x", report.height, " pixels, above this worker's "
                                           "limit of ", limits.max_pixels, " pixels and ",
                                           limits.max_side, " px per side")),
          kReasonImageTooLarge);
    case DecodeStop::kMismatch:
      return WithErrorReason(
          InvalidField(field, absl::StrCat("the ", media_type, " header reads ", header.width,
                                           "x", header.height, " but the decoder reads ",
                                           report.width, "x", report.height,
                                           "; refusing an ambiguous file")),
          kReasonHeaderMismatch);
    case DecodeStop::kTooManyScans:
      return WithErrorReason(
          InvalidField(field, absl::StrCat("progressive JPEG has more than ", limits.max_scans,
                                           " scans (--max-scans); refusing to decode it")),
          kReasonTooManyScans, {{"max_scans", absl::StrCat(limits.max_scans)}});
    case DecodeStop::kCancelled:
      return absl::CancelledError(absl::StrCat("cancelled while decoding the ", media_type));
    case DecodeStop::kDeadline:
      return absl::DeadlineExceededError(
          absl::StrCat("deadline passed while decoding the ", media_type));
  }
  return CannotDecode(field, header.kind);
}

// Input bytes handed to libwebp's incremental decoder between two checks of
// the call's cancellation and deadline.
constexpr size_t kWebpBytesPerCheck = 64 << 10;

DecodeStop DecodeWebpInto(absl::string_view bytes, const ImageHeader& header,
                          const DecodeLimits& limits, DecodeReport& report, cv::Mat& image) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, bytes.size(), &features) != VP8_STATUS_OK || features.width <= 0 ||
      features.height <= 0) {
    return DecodeStop::kCorrupt;
  }
  if (DecodeStop stop = CheckDecoderSize(features.width, features.height, header, limits, report);
      stop != DecodeStop::kNone) {
    return stop;
  }
  image.create(features.height, features.width, CV_8UC3);
  // BGR without alpha equals OpenCV's BGRA decode with alpha dropped. The
  // incremental decoder writes the same pixels as WebPDecodeBGRInto, and lets
  // a cancelled call stop between input chunks.
  struct IdecDeleter {
    void operator()(WebPIDecoder* decoder) const { WebPIDelete(decoder); }
  };
  std::unique_ptr<WebPIDecoder, IdecDeleter> decoder(
      WebPINewRGB(MODE_BGR, image.data, image.total() * image.elemSize(),
                  static_cast<int>(image.step)));
  if (decoder == nullptr) return DecodeStop::kCorrupt;
  size_t fed = 0;
  for (;;) {
    if (DecodeStop stop = CheckCallState(limits); stop != DecodeStop::kNone) return stop;
    fed = std::min(bytes.size(), fed + kWebpBytesPerCheck);
    const VP8StatusCode code = WebPIUpdate(decoder.get(), data, fed);
    if (code == VP8_STATUS_OK) break;
    if (code != VP8_STATUS_SUSPENDED || fed == bytes.size()) return DecodeStop::kCorrupt;
  }
  int last_row = 0;
  if (WebPIDecGetRGB(decoder.get(), &last_row, nullptr, nullptr, nullptr) == nullptr ||
      last_row != features.height) {
    return DecodeStop::kCorrupt;
  }
  return DecodeStop::kNone;
}

// Decodes without orientation; `orientation` gets the EXIF value (1 if none).
absl::StatusOr<cv::Mat> DecodeUnoriented(absl::string_view bytes, const ImageHeader& header,
                                         int reduce, absl::string_view field,
                                         const DecodeLimits& limits, int& orientation) {
  cv::Mat image;
  switch (header.kind) {
    case ImageKind::kJpeg: {
      JpegDecodeState state;
      state.limits = &limits;
      if (!DecodeJpegInto(bytes, header, reduce, state, image)) {
        return StoppedDecode(state.report, header, limits, field);
      }
      orientation = state.orientation;
      break;
    }
    case ImageKind::kPng: {
      PngDecodeState state;
      state.limits = &limits;
      if (!DecodePngInto(bytes, header, state, image)) {
        return StoppedDecode(state.report, header, limits, field);
      }
      orientation = state.orientation;
      break;
    }
    case ImageKind::kWebp: {
      DecodeReport report;
      report.stop = DecodeWebpInto(bytes, header, limits, report, image);
      if (report.stop != DecodeStop::kNone) return StoppedDecode(report, header, limits, field);
      break;
    }
  }
  return image;
}

}  // namespace

absl::StatusOr<ImageHeader> CheckDeclaredSize(absl::string_view bytes, int64_t max_pixels,
                                              absl::string_view field, int32_t max_side) {
  absl::StatusOr<ImageHeader> header = ParseImageHeader(bytes);
  if (!header.ok()) {
    return WithErrorReason(InvalidField(field, header.status().message()), kReasonNotAnImage);
  }
  const int64_t pixels = int64_t{header->width} * header->height;
  if (pixels > max_pixels) {
    return WithErrorReason(
        InvalidField(field, absl::StrCat("image declares ", header->width, "x", header->height,
                                         " = ", pixels, " pixels, above this worker's limit of ",
                                         max_pixels, " (--max-pixels)")),
        kReasonImageTooLarge);
  }
  if (header->width > max_side || header->height > max_side) {
    return WithErrorReason(
        InvalidField(field, absl::StrCat("image is ", header->width, "x", header->height,
                                         "; want at most ", max_side, " px per side")),
        kReasonImageTooLarge);
  }
  return header;
}

absl::StatusOr<cv::Mat> DecodeImage(absl::string_view bytes, const ImageHeader& header,
                                    int reduce, absl::string_view field) {
  return DecodeImage(bytes, header, DecodeLimits{}, reduce, field);
}

absl::StatusOr<cv::Mat> DecodeImage(absl::string_view bytes, const ImageHeader& header,
                                    const DecodeLimits& limits, int reduce,
                                    absl::string_view field) {
  if (reduce != 1 && (header.kind != ImageKind::kJpeg ||
                      (reduce != 2 && reduce != 4 && reduce != 8))) {
    return absl::InternalError(absl::StrCat("decode reduce factor ", reduce, " for ",
                                            MediaTypeOf(header.kind)));
  }
  try {
    int orientation = 1;
    absl::StatusOr<cv::Mat> image =
        DecodeUnoriented(bytes, header, reduce, field, limits, orientation);
    if (image.ok()) ApplyOrientation(orientation, *image);
    return image;
  } catch (const cv::Exception& e) {
    return WithErrorReason(
        InvalidField(field, absl::StrCat("cannot decode ", MediaTypeOf(header.kind), ": ",
                                         e.err)),
        kReasonNotAnImage);
  }
}

absl::StatusOr<Encoding> ResolveEncoding(const v1::EncodeOptions& options, ImageKind input,
                                         absl::string_view field_prefix) {
  Encoding encoding;
  switch (options.format()) {
    case v1::IMAGE_FORMAT_UNSPECIFIED: encoding.kind = input; break;
    case v1::IMAGE_FORMAT_JPEG: encoding.kind = ImageKind::kJpeg; break;
    case v1::IMAGE_FORMAT_PNG: encoding.kind = ImageKind::kPng; break;
    case v1::IMAGE_FORMAT_WEBP: encoding.kind = ImageKind::kWebp; break;
    default:
      return InvalidField(absl::StrCat(field_prefix, ".format"),
                          absl::StrCat("want JPEG, PNG or WebP, got ", options.format()));
  }
  if (options.quality() < 0 || options.quality() > 100) {
    return InvalidField(absl::StrCat(field_prefix, ".quality"),
                        absl::StrCat("want 1..100 (0 = default ", kDefaultQuality, "), got ",
                                     options.quality()));
  }
  encoding.quality = options.quality() == 0 ? kDefaultQuality : options.quality();
  return encoding;
}

absl::StatusOr<std::string> EncodeImage(const cv::Mat& image, const Encoding& encoding) {
  if (image.empty()) return absl::InternalError("encoding an empty image");
  const absl::string_view extension = ExtensionOf(encoding.kind);
  if (encoding.kind == ImageKind::kWebp &&
      (image.cols > kMaxWebpSide || image.rows > kMaxWebpSide)) {
    return absl::InvalidArgumentError(absl::StrCat("WebP cannot store ", image.cols, "x",
                                                   image.rows, " pixels (max side ",
                                                   kMaxWebpSide, ")"));
  }
  if (image.channels() != 1 && image.channels() != 3) {
    return absl::InternalError(
        absl::StrCat("cannot encode .", extension, " from ", image.channels(), " channels"));
  }
  const int quality = std::clamp(encoding.quality, 1, 100);
  try {
    // As imencode did, other depths are converted (saturated) to 8 bits.
    cv::Mat pixels = image;
    if (image.depth() != CV_8U) image.convertTo(pixels, CV_8U);
    std::string bytes;
    switch (encoding.kind) {
      case ImageKind::kJpeg: {
        JpegEncodeState state;
        if (!EncodeJpegInto(pixels, quality, state, bytes)) {
          return absl::InternalError("libjpeg could not encode .jpg");
        }
        break;
      }
      case ImageKind::kPng: {
        PngEncodeState state;
        state.out = &bytes;
        if (!EncodePngInto(pixels, state)) return absl::InternalError("libpng could not encode .png");
        break;
      }
      case ImageKind::kWebp: {
        // imencode(".webp", {IMWRITE_WEBP_QUALITY, q}) with q <= 100 is lossy.
        cv::Mat bgr = pixels;
        if (pixels.channels() == 1) cv::merge(std::vector<cv::Mat>{pixels, pixels, pixels}, bgr);
        uint8_t* out = nullptr;
        const size_t size = WebPEncodeBGR(bgr.ptr<uint8_t>(), bgr.cols, bgr.rows,
                                          static_cast<int>(bgr.step),
                                          static_cast<float>(quality), &out);
        if (size > 0) bytes.assign(reinterpret_cast<const char*>(out), size);
        WebPFree(out);
        if (size == 0) return absl::InternalError("libwebp could not encode .webp");
        break;
      }
    }
    return bytes;
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("could not encode .", extension, ": ", e.err));
  }
}

absl::Status EncodeInto(const cv::Mat& image, const Encoding& encoding, v1::Image& out) {
  absl::StatusOr<std::string> bytes = EncodeImage(image, encoding);
  if (!bytes.ok()) return bytes.status();
  out.set_data(std::move(*bytes));
  out.set_media_type(std::string(MediaTypeOf(encoding.kind)));
  out.set_width(image.cols);
  out.set_height(image.rows);
  return absl::OkStatus();
}

}  // namespace conveyor
