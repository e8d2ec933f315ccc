// The checks of each stage's own spec (DownloadSpec, ResizeSpec, ...), and
// the field rules they are built from. One source for each rule: the
// orchestrator runs them at submit time (through the stage registry), the
// workers on every call and the CLI before it sends, so a limit and its
// message exist once. Every error is INVALID_ARGUMENT from InvalidField(),
// naming the field under the caller's prefix, e.g. with "spec.steps[1].resize"
//   spec.steps[1].resize.width: want 0..16384, got -3
// and a worker's "spec" gives "spec.width: ...". A refusal never echoes a
// value that may be large or secret: it names the field, the size and the
// limit (a short value is shown C-escaped, a URL only by its scheme, since
// URLs can carry credentials). docs/limits.md lists the limits.
#ifndef CONVEYOR_COMMON_STEP_SPECS_H_
#define CONVEYOR_COMMON_STEP_SPECS_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "conveyor/v1/stages.pb.h"

namespace conveyor {

// The largest image side a stage decodes or produces, in pixels.
inline constexpr int kMaxImageSide = 16384;
// download.url and webhook.url. 8 KiB is what common HTTP servers accept
// in a request line; a longer URL could not be fetched anyway.
inline constexpr size_t kMaxUrlBytes = 8 * 1024;
inline constexpr size_t kMaxDestinationBytes = 1024;
inline constexpr size_t kMaxKeyTemplateBytes = 1024;
inline constexpr int kMaxFilterOps = 32;
// EncodeOptions.quality when it is 0.
inline constexpr int kDefaultQuality = 85;

// The thresholds an edge_detect op runs Canny with, after the proto's
// defaults (both 0: 100 and 200; high 0 alone: 200).
struct CannyThresholds {
  double low;
  double high;
};
CannyThresholds CannyThresholdsOf(const v1::FilterOp::EdgeDetect& edge);

// `value` for an error message: C-escaped, and cut to `max_bytes` with the
// total size appended when longer, so refusals stay small.
std::string Preview(absl::string_view value, size_t max_bytes = 64);

// Lengths are checked with CheckFieldLength (common/status_details.h): the
// size and the limit, never the value, reason FIELD_TOO_LONG.
// C0 controls, space (unless `allow_space`) and DEL.
absl::Status CheckNoControl(absl::string_view field, absl::string_view value, bool allow_space);
// An http:// or https:// URL of at most kMaxUrlBytes without controls or
// spaces. (The workers parse it fully before they fetch: http_client.h.)
absl::Status CheckHttpUrl(absl::string_view field, absl::string_view url);
absl::Status CheckEncodeOptions(absl::string_view field, const v1::EncodeOptions& out);

// One per stage; `field` names the spec ("spec", "spec.steps[2].resize").
// Every field is checked, the output's EncodeOptions and each filter op's
// parameters included (the ranges stages.proto documents).
absl::Status CheckDownloadSpec(absl::string_view field, const v1::DownloadSpec& spec);
absl::Status CheckResizeSpec(absl::string_view field, const v1::ResizeSpec& spec);
absl::Status CheckFilterSpec(absl::string_view field, const v1::FilterSpec& spec);
absl::Status CheckUploadSpec(absl::string_view field, const v1::UploadSpec& spec);
absl::Status CheckWebhookSpec(absl::string_view field, const v1::WebhookSpec& spec);

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_STEP_SPECS_H_
