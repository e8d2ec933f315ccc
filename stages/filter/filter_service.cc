#include "stages/filter/filter_service.h"

#include "absl/strings/str_cat.h"

namespace conveyor::stages::filter {

absl::Status FilterService::Work(const v1::FilterRequest& req, v1::FilterResponse& resp,
                                 CallScope& call) const {
  FilterStats stats;
  absl::Status status = filterer_.Filter(req, resp, call.cancelled, stats, call.deadline);
  call.log_fields.emplace_back("ops", absl::StrCat(req.spec().ops_size()));
  if (stats.size.area() > 0) {
    call.log_fields.emplace_back("dims", absl::StrCat(stats.size.width, "x", stats.size.height));
  }
  return status;
}

}  // namespace conveyor::stages::filter
