#include "common/stage_kind.h"

namespace conveyor {

absl::string_view StageName(v1::StageKind kind) {
  switch (kind) {
    case v1::STAGE_KIND_DOWNLOAD: return "download";
    case v1::STAGE_KIND_RESIZE: return "resize";
    case v1::STAGE_KIND_FILTER: return "filter";
    case v1::STAGE_KIND_UPLOAD: return "upload";
    case v1::STAGE_KIND_WEBHOOK: return "webhook";
    default: return "unspecified";
  }
}

v1::StageKind StepKind(const v1::Step& step) {
  switch (step.kind_case()) {
    case v1::Step::kDownload: return v1::STAGE_KIND_DOWNLOAD;
    case v1::Step::kResize: return v1::STAGE_KIND_RESIZE;
    case v1::Step::kFilter: return v1::STAGE_KIND_FILTER;
    case v1::Step::kUpload: return v1::STAGE_KIND_UPLOAD;
    case v1::Step::kWebhook: return v1::STAGE_KIND_WEBHOOK;
    case v1::Step::KIND_NOT_SET: break;
  }
  return v1::STAGE_KIND_UNSPECIFIED;
}

}  // namespace conveyor
