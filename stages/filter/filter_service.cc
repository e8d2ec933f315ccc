#include "stages/filter/filter_service.h"

#include "absl/strings/str_cat.h"

namespace conveyor::stages::filter {

grpc::ServerUnaryReactor* FilterService::Filter(grpc::CallbackServerContext* ctx,
                                                const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response) {
  return runner_.RunRaw<v1::FilterRequest, v1::FilterResponse>(
      ctx, request, response, "conveyor.v1.FilterStage/Filter",
      [this](const v1::FilterRequest& req, v1::FilterResponse& resp, CallScope& call) {
        FilterStats stats;
        absl::Status status = filterer_.Filter(req, resp, call.cancelled, stats, call.deadline);
        call.log_fields.emplace_back("ops", absl::StrCat(req.spec().ops_size()));
        if (stats.size.area() > 0) {
          call.log_fields.emplace_back("dims",
                                       absl::StrCat(stats.size.width, "x", stats.size.height));
        }
        return status;
      });
}

}  // namespace conveyor::stages::filter
