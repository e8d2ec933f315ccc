#include "common/stage_registry.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/step_specs.h"

namespace conveyor {
namespace {

using v1::Step;

// Each stage's spec check under its arm's name: "spec.steps[2]" ->
// "spec.steps[2].resize.width".
absl::Status CheckDownloadStep(absl::string_view field, const Step& step) {
  return CheckDownloadSpec(absl::StrCat(field, ".download"), step.download());
}
absl::Status CheckResizeStep(absl::string_view field, const Step& step) {
  return CheckResizeSpec(absl::StrCat(field, ".resize"), step.resize());
}
absl::Status CheckFilterStep(absl::string_view field, const Step& step) {
  return CheckFilterSpec(absl::StrCat(field, ".filter"), step.filter());
}
absl::Status CheckUploadStep(absl::string_view field, const Step& step) {
  return CheckUploadSpec(absl::StrCat(field, ".upload"), step.upload());
}
absl::Status CheckWebhookStep(absl::string_view field, const Step& step) {
  return CheckWebhookSpec(absl::StrCat(field, ".webhook"), step.webhook());
}

constexpr StageInfo kStages[] = {
    {v1::STAGE_KIND_DOWNLOAD, Step::kDownload, "download", "conveyor.v1.DownloadStage",
     "Download", DataKind::kNothing, DataKind::kImage, false, 50061, &CheckDownloadStep},
    {v1::STAGE_KIND_RESIZE, Step::kResize, "resize", "conveyor.v1.ResizeStage", "Resize",
     DataKind::kImage, DataKind::kImage, false, 50062, &CheckResizeStep},
    {v1::STAGE_KIND_FILTER, Step::kFilter, "filter", "conveyor.v1.FilterStage", "Filter",
     DataKind::kImage, DataKind::kImage, false, 50063, &CheckFilterStep},
    {v1::STAGE_KIND_UPLOAD, Step::kUpload, "upload", "conveyor.v1.UploadStage", "Upload",
     DataKind::kImage, DataKind::kStoredObject, false, 50064, &CheckUploadStep},
    {v1::STAGE_KIND_WEBHOOK, Step::kWebhook, "webhook", "conveyor.v1.WebhookStage", "Deliver",
     DataKind::kAny, DataKind::kAny, true, 50065, &CheckWebhookStep},
};

}  // namespace

absl::string_view DataKindName(DataKind kind) {
  switch (kind) {
    case DataKind::kNothing: return "nothing";
    case DataKind::kImage: return "an image";
    case DataKind::kStoredObject: return "a stored object";
    case DataKind::kAny: return "anything";
  }
  return "?";
}

absl::Span<const StageInfo> Stages() { return kStages; }

const StageInfo* FindStage(v1::StageKind kind) {
  for (const StageInfo& stage : kStages) {
    if (stage.kind == kind) return &stage;
  }
  return nullptr;
}

const StageInfo* FindStageByName(absl::string_view name) {
  for (const StageInfo& stage : kStages) {
    if (absl::EqualsIgnoreCase(stage.name, name)) return &stage;
  }
  return nullptr;
}

const StageInfo* StageOfStep(const v1::Step& step) {
  for (const StageInfo& stage : kStages) {
    if (stage.step_case == step.kind_case()) return &stage;
  }
  return nullptr;
}

absl::string_view StageName(v1::StageKind kind) {
  const StageInfo* stage = FindStage(kind);
  return stage == nullptr ? "unspecified" : stage->name;
}

v1::StageKind StepKind(const v1::Step& step) {
  const StageInfo* stage = StageOfStep(step);
  return stage == nullptr ? v1::STAGE_KIND_UNSPECIFIED : stage->kind;
}

std::string StageNames(absl::string_view separator) {
  return absl::StrJoin(kStages, separator,
                       [](std::string* out, const StageInfo& s) { absl::StrAppend(out, s.name); });
}

}  // namespace conveyor
