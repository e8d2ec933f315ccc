// conveyor-resize: the resize stage worker.
#include "stages/common/image_codec_flags.h"
#include "stages/resize/resize.h"
#include "stages/resize/resize_service.h"

namespace resize = conveyor::stages::resize;

int main(int argc, char** argv) {
  return conveyor::RunImageWorker<resize::ResizeOptions, resize::Resizer, resize::ResizeService>(
      argc, argv, conveyor::v1::STAGE_KIND_RESIZE,
      "conveyor-resize: resizes JPEG, PNG and WebP images with OpenCV (fit modes contain, "
      "cover, fill, inside; JPEG shrink-on-load) and serves conveyor.v1.ResizeStage over gRPC.",
      "largest image (width x height, read from its header before decoding) and largest output "
      "accepted; larger gets INVALID_ARGUMENT IMAGE_TOO_LARGE");
}
