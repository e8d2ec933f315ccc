#include "orchestrator/dashboard/sse_frame.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace conveyor::orchestrator::dashboard {
namespace {

std::string OneLine(absl::string_view field) {
  return absl::StrReplaceAll(field, {{"\r", ""}, {"\n", ""}});
}

}  // namespace

std::string SseFrame(absl::string_view event, absl::string_view data, absl::string_view id) {
  std::string frame;
  if (!id.empty()) absl::StrAppend(&frame, "id: ", OneLine(id), "\n");
  absl::StrAppend(&frame, "event: ", OneLine(event), "\n");
  // CRLF, CR and LF all end a line for EventSource.
  const std::string lines = absl::StrReplaceAll(data, {{"\r\n", "\n"}, {"\r", "\n"}});
  for (absl::string_view line : absl::StrSplit(lines, '\n')) {
    absl::StrAppend(&frame, "data: ", line, "\n");
  }
  frame += "\n";
  return frame;
}

}  // namespace conveyor::orchestrator::dashboard
