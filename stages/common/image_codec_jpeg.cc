// JPEG decode and encode with libjpeg-turbo (image_codec.h).
#include <csetjmp>
// libjpeg's headers need size_t and FILE declared first.
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include <jpeglib.h>

#include "stages/common/image_codec_internal.h"

namespace conveyor::codec_internal {
namespace {

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

}  // namespace

bool DecodeJpeg(absl::string_view bytes, const ImageHeader& header, int reduce,
                const DecodeLimits& limits, DecodeReport& report, int& orientation,
                cv::Mat& out) {
  JpegDecodeState state;
  state.limits = &limits;
  const bool decoded = DecodeJpegInto(bytes, header, reduce, state, out);
  report = state.report;
  orientation = state.orientation;
  return decoded;
}

bool EncodeJpeg(const cv::Mat& image, int quality, std::string& out) {
  JpegEncodeState state;
  return EncodeJpegInto(image, quality, state, out);
}

}  // namespace conveyor::codec_internal
