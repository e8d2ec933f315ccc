#include "tests/testing/test_images.h"

#include <algorithm>
#include <opencv2/imgcodecs.hpp>
#include <vector>

namespace conveyor::testing {
namespace {

std::string Encode(const char* ext, const cv::Mat& image) {
  std::vector<uchar> out;
  if (!cv::imencode(ext, image, out)) return "";
  return std::string(out.begin(), out.end());
}

}  // namespace

std::string NoiseJpeg(int width, int height) {
  cv::Mat image(height, width, CV_8UC3);
  cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
  return Encode(".jpg", image);
}

std::string SolidPng(int width, int height, cv::Scalar color) {
  return Encode(".png", cv::Mat(height, width, CV_8UC3, color));
}

std::string PaddedPng(size_t total_bytes) {
  std::string png = SolidPng(1, 1, cv::Scalar(1, 2, 3));
  png.resize(std::max(total_bytes, png.size()), '\0');
  return png;
}

}  // namespace conveyor::testing
