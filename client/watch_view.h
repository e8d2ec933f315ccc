// How `watch` (and `submit --wait`, `retry --wait`) render a chain's event
// stream: one line per event for pipes, a progress bar on a terminal. Pure
// (tests/client/watch_view_test.cc).
#ifndef CONVEYOR_CLIENT_WATCH_VIEW_H_
#define CONVEYOR_CLIENT_WATCH_VIEW_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "conveyor/v1/chain.pb.h"
#include "conveyor/v1/orchestrator.pb.h"

namespace conveyor::client {

// One line (no '\n') per event, for pipes and logs:
// "2026-11-26T11:00:00.123Z STEP_SUCCEEDED step=1 resize attempt=1 ..."
// `kinds` names the steps (index-aligned); it may be shorter or empty.
std::string FormatEventLine(const conveyor::v1::ChainEvent& event,
                            const std::vector<conveyor::v1::StageKind>& kinds);

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

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_WATCH_VIEW_H_
