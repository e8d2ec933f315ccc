// What `batch` prints: a line per finished chain, a progress bar on a
// terminal, and the summary. Pure (tests/client/batch_format_test.cc).
#ifndef CONVEYOR_CLIENT_BATCH_FORMAT_H_
#define CONVEYOR_CLIENT_BATCH_FORMAT_H_

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace conveyor::client {

// One chain of a `batch`, as the summary reports it.
struct BatchItemResult {
  std::string source;  // the URL or file path from the input
  std::string chain;   // "chains/..." if it was submitted
  bool succeeded = false;
  std::string reason;  // why it failed
  absl::Duration elapsed;
};

// "[####......]  12/40  ok 10  failed 2  running 4" (no newline).
std::string FormatBatchProgress(int done, int total, int succeeded, int failed, int running,
                                int bar_width);
// "ok    <source>  chains/..  1.25s" or "FAIL  <source>  <reason>".
std::string FormatBatchItem(const BatchItemResult& item);
// Totals, each failure with its reason, wall time and throughput.
std::string FormatBatchSummary(const std::vector<BatchItemResult>& items, absl::Duration wall);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_BATCH_FORMAT_H_
