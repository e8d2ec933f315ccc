// The stage registry as the Markdown table docs/architecture.md shows, so
// the docs are made from the registry rather than written beside it:
// tools/stage_table_main.cc prints or writes it, and
// tests/common/stage_registry_test.cc fails while the docs differ.
#ifndef CONVEYOR_COMMON_STAGE_TABLE_H_
#define CONVEYOR_COMMON_STAGE_TABLE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace conveyor {

// The lines that enclose the generated table in a Markdown file.
inline constexpr absl::string_view kStageTableBegin =
    "<!-- stage table: made from common/stage_registry.cc by conveyor-stage-table -->";
inline constexpr absl::string_view kStageTableEnd = "<!-- end of stage table -->";

// One row per stage: name, service and method, consumes, produces, default
// port, the orchestrator's target flag, the worker binary.
std::string StageTableMarkdown();

// `document` with the text between kStageTableBegin and kStageTableEnd
// replaced by StageTableMarkdown(). INVALID_ARGUMENT if the markers are
// missing or out of order.
absl::StatusOr<std::string> WithStageTable(absl::string_view document);

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_STAGE_TABLE_H_
