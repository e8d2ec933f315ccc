#include "client/batch_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/format.h"

namespace conveyor::client {

std::string FormatBatchProgress(int done, int total, int succeeded, int failed, int running,
                                int bar_width) {
  const int percent = total > 0 ? done * 100 / total : 100;
  return absl::StrCat(ProgressBar(percent, bar_width), "  ", done, "/", total, "  ok ", succeeded,
                      "  failed ", failed, "  running ", running);
}

std::string FormatBatchItem(const BatchItemResult& item) {
  if (item.succeeded) {
    return absl::StrCat("ok    ", item.source, "  ", item.chain, "  ", ShortDuration(item.elapsed));
  }
  return absl::StrCat("FAIL  ", item.source, "  ", item.chain.empty() ? "" : item.chain + "  ",
                      item.reason);
}

std::string FormatBatchSummary(const std::vector<BatchItemResult>& items, absl::Duration wall) {
  int succeeded = 0;
  std::vector<const BatchItemResult*> failed;
  for (const auto& item : items) {
    if (item.succeeded) {
      ++succeeded;
    } else {
      failed.push_back(&item);
    }
  }
  const double seconds = absl::ToDoubleSeconds(wall);
  std::string out = absl::StrCat(
      "\n", items.size(), " chains: ", succeeded, " succeeded, ", failed.size(), " failed in ",
      ShortDuration(wall), " (",
      absl::StrFormat("%.2f", seconds > 0 ? static_cast<double>(items.size()) / seconds : 0.0),
      " chains/s)\n");
  if (!failed.empty()) {
    out += "Failed:\n";
    for (const BatchItemResult* item : failed) {
      absl::StrAppend(&out, "  ", item->source, ": ", item->reason, "\n");
    }
  }
  return out;
}

}  // namespace conveyor::client
