// Small images made in the test, for requests whose pixels do not matter
// (or must be noise, so codecs cannot shrink them to nothing).
#ifndef CONVEYOR_TESTS_TESTING_TEST_IMAGES_H_
#define CONVEYOR_TESTS_TESTING_TEST_IMAGES_H_

#include <cstddef>
#include <opencv2/core.hpp>
#include <string>

namespace conveyor::testing {

// A `width` x `height` JPEG of random noise; "" if encoding fails.
std::string NoiseJpeg(int width, int height);

// A `width` x `height` PNG of one colour; "" if encoding fails. The 4x4
// default is what the flaky test worker echoes and the orchestrator sniffs.
std::string SolidPng(int width = 4, int height = 4, cv::Scalar color = cv::Scalar(10, 20, 30));

// A real 1x1 PNG padded with zeros to `total_bytes` (decoders stop at IEND),
// so blob accounting can be checked to the byte.
std::string PaddedPng(size_t total_bytes = 200);

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_TEST_IMAGES_H_
