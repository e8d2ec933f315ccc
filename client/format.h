// Human and JSON output of the `conveyor` CLI, as pure functions of protos and
// the current time: tables, relative times, progress bars, event lines. No
// I/O and no gRPC here, so tests/client/format_test.cc checks them exactly.
#ifndef CONVEYOR_CLIENT_FORMAT_H_
#define CONVEYOR_CLIENT_FORMAT_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "conveyor/v1/chain.pb.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "google/protobuf/message.h"
#include "google/rpc/status.pb.h"
#include "common/stage_registry.h"

namespace conveyor::client {

// "SUCCEEDED", ...; "-" for STATE_UNSPECIFIED.
std::string StateName(conveyor::v1::State state);
// gRPC / google.rpc code name: "NOT_FOUND". Unknown numbers print as digits.
std::string CodeName(int code);

// "just now", "42s ago", "5m ago", "3h ago", "2d ago", or "in 30s" for a time
// after `now`. "-" for the Unix epoch (an unset protobuf Timestamp).
std::string FormatRelativeTime(absl::Time t, absl::Time now);
// "850us", "184ms", "1.25s", "3m05s", "2h03m".
std::string ShortDuration(absl::Duration d);
// "512 B", "78.4 KiB", "2.0 MiB".
std::string FormatBytes(int64_t bytes);

// Left-aligned columns separated by two spaces; the header row first. Rows
// shorter than the header are padded with empty cells. Each line ends in
// '\n'; trailing spaces are trimmed.
std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

// "[##########..........]  50%" with `width` cells inside the brackets;
// percent is clamped to 0..100.
std::string ProgressBar(int percent, int width);

// "CODE: message" of a google.rpc.Status.
std::string FormatRpcStatus(const google::rpc::Status& status);
// One-line summary of a step's output: "800x533 image/jpeg 78.4 KiB",
// "file:///out/a.jpg 78.4 KiB", "webhook HTTP 200 id=msg_... in 12ms".
std::string FormatStepOutput(const conveyor::v1::StepOutput& output);

// One line (no '\n') per event, for pipes and logs:
// "2026-11-26T11:00:00.123Z STEP_SUCCEEDED step=1 resize attempt=1 ..."
// `kinds` names the steps (index-aligned); it may be shorter or empty.
std::string FormatEventLine(const conveyor::v1::ChainEvent& event,
                            const std::vector<conveyor::v1::StageKind>& kinds);

// `conveyor get`: header, steps table, results, error.
std::string FormatChain(const conveyor::v1::Chain& chain, absl::Time now);
// `conveyor list`: a table, then a "next page" hint when there is one. Its
// ERROR column is "<stage>: <reason>", what --stage / --error-reason match.
std::string FormatChainList(const conveyor::v1::ListChainsResponse& response, absl::Time now);
// `conveyor status`: stages table, Redis, replicas, chains by state.
std::string FormatSystemStatus(const conveyor::v1::SystemStatus& status, absl::Time now);
// Whether every stage is SERVING and Redis is reachable; `conveyor status`
// exits 0 only then (1 otherwise).
bool SystemHealthy(const conveyor::v1::SystemStatus& status);
// `conveyor purge`.
std::string FormatPurge(const conveyor::v1::PurgeChainsResponse& response, bool dry_run);

// `conveyor retry` / `conveyor cancel` by filter. `verb` is "retry" or
// "cancel". Counts first ("Retried 37 chains; 3 skipped ..."), then the
// changed names (a sample of up to 100), then each failure with its error.
std::string FormatBulkResult(const conveyor::v1::BulkChainsResponse& response,
                             absl::string_view verb, bool dry_run);

// Proto JSON (lowerCamelCase names, enums as names). `pretty` adds
// indentation; otherwise one line, as `watch --json` prints per event.
std::string ToJson(const google::protobuf::Message& message, bool pretty);

// Renders a WatchChain stream. On a terminal (`tty`) it prints one line per
// finished / retried / failed step and keeps a progress bar on the last line
// (redrawn with "\r\033[K"); otherwise one FormatEventLine per event.
// Not thread-safe; one per watched chain.
class WatchView {
 public:
  WatchView(std::vector<conveyor::v1::StageKind> kinds, bool tty, int bar_width = 30);
  // Text to write for `event` (may be empty).
  std::string OnEvent(const conveyor::v1::ChainEvent& event);
  // Text to write when the stream ends (ends the bar's line on a terminal).
  std::string Finish();
  // The chain state after the last event seen.
  conveyor::v1::State state() const { return state_; }

 private:
  std::string BarLine() const;

  std::vector<conveyor::v1::StageKind> kinds_;
  bool tty_;
  int bar_width_;
  bool bar_drawn_ = false;
  conveyor::v1::State state_ = conveyor::v1::STATE_UNSPECIFIED;
  int progress_ = 0;
  int current_step_ = -1;
  std::map<int, absl::Time> step_start_;
  // Steps waiting for their stage (STEP_WAITING): since when, and why.
  std::map<int, std::pair<absl::Time, std::string>> waiting_;
};

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

#endif  // CONVEYOR_CLIENT_FORMAT_H_
