// Writes the seed images of image_header_fuzz and image_decode_fuzz into the
// directory given as argv[1]: each a few hundred bytes, each a different
// path through the codecs (JPEG baseline, progressive, gray, CMYK, EXIF
// orientation; PNG gray/RGB/palette/alpha/16-bit/interlaced/eXIf; WebP lossy,
// lossless, lossy with alpha). Made by the codecs themselves at build time,
// so no binary is committed. Deterministic: same libraries, same bytes.
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>

namespace {

std::string g_dir;

void Write(const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string path = g_dir + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::fclose(f);
}

// A small gradient, `channels` interleaved samples per pixel.
std::vector<uint8_t> Pixels(int width, int height, int channels) {
  std::vector<uint8_t> p(static_cast<size_t>(width) * height * channels);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 37 + i / 7);
  return p;
}

// EXIF APP1 payload: a big-endian TIFF with one IFD entry, Orientation.
std::vector<uint8_t> ExifOrientation(int orientation) {
  return {'E', 'x', 'i', 'f', 0, 0,                   // APP1 identifier
          'M', 'M', 0, 42, 0, 0, 0, 8,                // TIFF header
          0, 1,                                       // one entry
          0x01, 0x12, 0, 3, 0, 0, 0, 1,               // Orientation, SHORT, 1
          0, static_cast<uint8_t>(orientation), 0, 0,  // value
          0, 0, 0, 0};                                // no next IFD
}

void Jpeg(const std::string& name, int width, int height, J_COLOR_SPACE space, int channels,
          bool progressive, int exif_orientation = 0) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr error;
  cinfo.err = jpeg_std_error(&error);
  jpeg_create_compress(&cinfo);
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  jpeg_mem_dest(&cinfo, &out, &out_size);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = channels;
  cinfo.in_color_space = space;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 50, TRUE);
  if (progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  if (exif_orientation != 0) {
    std::vector<uint8_t> exif = ExifOrientation(exif_orientation);
    jpeg_write_marker(&cinfo, JPEG_APP0 + 1, exif.data(), static_cast<unsigned>(exif.size()));
  }
  std::vector<uint8_t> pixels = Pixels(width, height, channels);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = pixels.data() + static_cast<size_t>(cinfo.next_scanline) * width * channels;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  Write(name, std::vector<uint8_t>(out, out + out_size));
  std::free(out);
}

void PngAppend(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + length);
}
void PngFlush(png_structp) {}

void Png(const std::string& name, int width, int height, int color_type, int bit_depth,
         bool interlaced, bool exif = false) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  std::vector<uint8_t> out;
  png_set_write_fn(png, &out, PngAppend, PngFlush);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height),
               bit_depth, color_type, interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  int channels = 1;
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    png_color palette[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    png_set_PLTE(png, info, palette, 4);
  } else if (color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
    channels = 2;
  } else if (color_type == PNG_COLOR_TYPE_RGB) {
    channels = 3;
  } else if (color_type == PNG_COLOR_TYPE_RGB_ALPHA) {
    channels = 4;
  }
  std::vector<uint8_t> orientation;
  if (exif) {
    orientation = ExifOrientation(8);
    orientation.erase(orientation.begin(), orientation.begin() + 6);  // eXIf: TIFF only
    png_set_eXIf_1(png, info, static_cast<png_uint_32>(orientation.size()), orientation.data());
  }
  png_write_info(png, info);
  const size_t row_bytes = (static_cast<size_t>(width) * channels * bit_depth + 7) / 8;
  std::vector<uint8_t> pixels = Pixels(static_cast<int>(row_bytes), height, 1);
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    for (uint8_t& b : pixels) b &= bit_depth == 8 ? 3 : 0x55;  // indices < 4
  }
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (int y = 0; y < height; ++y) rows[y] = pixels.data() + y * row_bytes;
  png_write_image(png, rows.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  Write(name, out);
}

void Webp(const std::string& name, int width, int height, bool lossless, bool alpha) {
  const int channels = alpha ? 4 : 3;
  std::vector<uint8_t> pixels = Pixels(width, height, channels);
  uint8_t* out = nullptr;
  size_t size = 0;
  const int stride = width * channels;
  if (lossless) {
    size = alpha ? WebPEncodeLosslessRGBA(pixels.data(), width, height, stride, &out)
                 : WebPEncodeLosslessRGB(pixels.data(), width, height, stride, &out);
  } else {
    size = alpha ? WebPEncodeRGBA(pixels.data(), width, height, stride, 50, &out)
                 : WebPEncodeRGB(pixels.data(), width, height, stride, 50, &out);
  }
  if (size == 0) {
    std::fprintf(stderr, "WebP encode of %s failed\n", name.c_str());
    std::exit(1);
  }
  Write(name, std::vector<uint8_t>(out, out + size));
  WebPFree(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output dir>\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  ::mkdir(g_dir.c_str(), 0755);  // the parent exists: the build's fuzz/ dir
  Jpeg("baseline.jpg", 17, 9, JCS_RGB, 3, false);
  Jpeg("progressive.jpg", 16, 16, JCS_RGB, 3, true);
  Jpeg("gray.jpg", 8, 8, JCS_GRAYSCALE, 1, false);
  Jpeg("cmyk.jpg", 9, 7, JCS_CMYK, 4, false);
  Jpeg("exif6.jpg", 12, 5, JCS_RGB, 3, false, 6);
  Png("gray1.png", 13, 3, PNG_COLOR_TYPE_GRAY, 1, false);
  Png("rgb.png", 7, 5, PNG_COLOR_TYPE_RGB, 8, false);
  Png("palette.png", 6, 6, PNG_COLOR_TYPE_PALETTE, 8, false);
  Png("gray_alpha16_interlaced.png", 9, 9, PNG_COLOR_TYPE_GRAY_ALPHA, 16, true);
  Png("rgba_exif.png", 5, 3, PNG_COLOR_TYPE_RGB_ALPHA, 8, false, true);
  Webp("lossy.webp", 11, 7, false, false);
  Webp("lossy_alpha.webp", 8, 8, false, true);
  Webp("lossless.webp", 5, 9, true, false);
  Webp("lossless_alpha.webp", 4, 4, true, true);
  return 0;
}
