// conveyor-filter: the filter stage worker.
#include "stages/common/image_codec_flags.h"
#include "stages/filter/filter.h"
#include "stages/filter/filter_service.h"

namespace filter = conveyor::stages::filter;

int main(int argc, char** argv) {
  return conveyor::RunImageWorker<filter::FilterOptions, filter::Filterer, filter::FilterService>(
      argc, argv, conveyor::v1::STAGE_KIND_FILTER,
      "conveyor-filter: applies an ordered list of OpenCV operations (grayscale, gaussian blur, "
      "sharpen, sepia, brightness/contrast, invert, Canny edges) to a JPEG, PNG or WebP image "
      "and serves conveyor.v1.FilterStage over gRPC.",
      "largest image (width x height, read from its header before decoding) accepted; larger "
      "gets INVALID_ARGUMENT IMAGE_TOO_LARGE");
}
