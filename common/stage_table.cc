#include "common/stage_table.h"

#include "absl/strings/str_cat.h"
#include "common/stage_registry.h"

namespace conveyor {

std::string StageTableMarkdown() {
  std::string table =
      "| Stage | gRPC service / method | Consumes | Produces | Default port | Orchestrator flag "
      "| Worker binary |\n"
      "|---|---|---|---|---|---|---|\n";
  for (const StageInfo& stage : Stages()) {
    absl::StrAppend(&table, "| ", stage.name, " | `", stage.service, "/", stage.method, "` | ",
                    DataKindName(stage.consumes), " | ", DataKindName(stage.produces), " | ",
                    stage.default_port, " | `--", stage.name, "-target` | `conveyor-", stage.name,
                    "` |\n");
  }
  return table;
}

absl::StatusOr<std::string> WithStageTable(absl::string_view document) {
  const size_t begin = document.find(kStageTableBegin);
  const size_t end = document.find(kStageTableEnd);
  if (begin == absl::string_view::npos || end == absl::string_view::npos || end < begin) {
    return absl::InvalidArgumentError(absl::StrCat("the document has no \"", kStageTableBegin,
                                                   "\" ... \"", kStageTableEnd, "\" block"));
  }
  const size_t body = begin + kStageTableBegin.size();
  return absl::StrCat(document.substr(0, body), "\n", StageTableMarkdown(),
                      document.substr(end));
}

}  // namespace conveyor
