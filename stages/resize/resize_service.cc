#include "stages/resize/resize_service.h"

#include "absl/strings/str_cat.h"

namespace conveyor::stages::resize {

absl::Status ResizeService::Work(const v1::ResizeRequest& req, v1::ResizeResponse& resp,
                                 CallScope& call) const {
  ResizeStats stats;
  absl::Status status = resizer_.Resize(req, resp, call.cancelled, stats, call.deadline);
  if (stats.input.area() > 0) {
    call.log_fields.emplace_back("in_dims",
                                 absl::StrCat(stats.input.width, "x", stats.input.height));
    call.log_fields.emplace_back("decode_scale", absl::StrCat(stats.decode_scale));
  }
  if (status.ok()) {
    call.log_fields.emplace_back("out_dims",
                                 absl::StrCat(stats.output.width, "x", stats.output.height));
  }
  return status;
}

}  // namespace conveyor::stages::resize
