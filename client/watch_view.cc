#include "client/watch_view.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/format.h"
#include "common/proto_time.h"

namespace conveyor::client {

using conveyor::v1::ChainEvent;
using conveyor::v1::StageKind;

std::string FormatEventLine(const ChainEvent& event, const std::vector<StageKind>& kinds) {
  std::string line = absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", FromProtoTime(event.time()), absl::UTCTimeZone()),
      " ", ChainEvent::Type_Name(event.type()));
  if (event.step_index() >= 0) {
    absl::StrAppend(&line, " step=", event.step_index());
    if (const std::string kind = StageAt(kinds, event.step_index()); !kind.empty()) {
      absl::StrAppend(&line, " ", kind);
    }
    if (event.attempt() > 0) absl::StrAppend(&line, " attempt=", event.attempt());
  }
  absl::StrAppend(&line, " state=", StateName(event.chain_state()),
                  " progress=", event.progress_percent(), "%");
  if (!event.worker().empty()) absl::StrAppend(&line, " worker=", event.worker());
  if (!event.coordinator().empty()) absl::StrAppend(&line, " coordinator=", event.coordinator());
  if (event.has_actor()) {
    absl::StrAppend(&line, " by=", event.actor().principal(), "@", event.actor().tenant());
  }
  if (event.has_output()) {
    if (const std::string out = FormatStepOutput(event.output()); !out.empty()) {
      absl::StrAppend(&line, " output=\"", out, "\"");
    }
  }
  if (event.has_error()) {
    absl::StrAppend(&line, " error=\"", FormatRpcStatus(event.error()), "\"");
  }
  if (HasTime(event.next_attempt_time())) {
    absl::StrAppend(
        &line, " next_attempt=",
        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", FromProtoTime(event.next_attempt_time()),
                         absl::UTCTimeZone()));
  }
  return line;
}

WatchView::WatchView(std::vector<StageKind> kinds, bool tty, int bar_width)
    : kinds_(std::move(kinds)), tty_(tty), bar_width_(bar_width) {}

std::string WatchView::BarLine() const {
  std::string line = absl::StrCat(ProgressBar(progress_, bar_width_), "  ", StateName(state_));
  if (current_step_ >= 0 && (state_ == conveyor::v1::RUNNING || state_ == conveyor::v1::RETRYING)) {
    absl::StrAppend(&line, "  step ", current_step_ + 1, "/", kinds_.size());
    if (const std::string kind = StageAt(kinds_, current_step_); !kind.empty()) {
      absl::StrAppend(&line, " ", kind);
    }
    if (auto it = waiting_.find(current_step_); it != waiting_.end()) {
      absl::StrAppend(&line, "  waiting: ", it->second.second);
    }
  }
  return line;
}

std::string WatchView::OnEvent(const ChainEvent& event) {
  state_ = event.chain_state();
  progress_ = event.progress_percent();
  if (!tty_) return absl::StrCat(FormatEventLine(event, kinds_), "\n");

  const int index = event.step_index();
  const absl::Time time = FromProtoTime(event.time());
  // People count steps from 1 here, as the bar does ("step 2/5 resize").
  std::string step_name = absl::StrCat("step ", index + 1, "/", kinds_.size());
  if (const std::string kind = StageAt(kinds_, index); !kind.empty()) {
    absl::StrAppend(&step_name, " ", kind);
  }
  std::string line;  // a finished line above the bar, if any
  switch (event.type()) {
    case ChainEvent::STEP_STARTED:
      current_step_ = index;
      if (!step_start_.count(index)) step_start_[index] = time;
      if (auto it = waiting_.find(index); it != waiting_.end()) {
        line =
            absl::StrCat("  resume ", step_name, "  after waiting ",
                         ShortDuration(time - it->second.first), " for ", StageAt(kinds_, index));
        waiting_.erase(it);
      }
      break;
    case ChainEvent::STEP_WAITING: {
      current_step_ = index;
      const std::string reason = FormatRpcStatus(event.error());
      waiting_[index] = {time, reason};
      line = absl::StrCat("  wait   ", step_name, "  waiting for ", StageAt(kinds_, index), ": ",
                          reason);
      break;
    }
    case ChainEvent::STEP_RECLAIMED:
      line = absl::StrCat("  reclaim ", step_name, "  taken over from coordinator ",
                          event.coordinator());
      break;
    case ChainEvent::STEP_SUCCEEDED: {
      std::string took;
      if (auto it = step_start_.find(index); it != step_start_.end()) {
        took = absl::StrCat("  ", ShortDuration(time - it->second));
      }
      line = absl::StrCat(
          "  ok     ", step_name, "  ", FormatStepOutput(event.output()), took,
          event.attempt() > 1 ? absl::StrCat("  (attempt ", event.attempt(), ")") : "");
      break;
    }
    case ChainEvent::STEP_RETRYING:
      line = absl::StrCat("  retry  ", step_name, "  attempt ", event.attempt(),
                          " failed: ", FormatRpcStatus(event.error()));
      if (HasTime(event.next_attempt_time())) {
        absl::StrAppend(&line, "; next ",
                        FormatRelativeTime(FromProtoTime(event.next_attempt_time()), time));
      }
      break;
    case ChainEvent::STEP_FAILED:
      line = absl::StrCat("  FAILED ", step_name, "  ", FormatRpcStatus(event.error()));
      break;
    case ChainEvent::CHAIN_SUBMITTED:
      line = absl::StrCat("  submitted ", event.chain());
      break;
    case ChainEvent::CHAIN_RESUMED:
      line = absl::StrCat("  resumed from step ", index + 1);
      break;
    case ChainEvent::CHAIN_FAILED:
      line = absl::StrCat("  chain FAILED: ", FormatRpcStatus(event.error()));
      break;
    case ChainEvent::CHAIN_CANCELLED:
      line = event.has_error() ? absl::StrCat("  chain CANCELLED: ", FormatRpcStatus(event.error()))
                               : "  chain CANCELLED";
      break;
    default:
      break;
  }
  std::string out = bar_drawn_ ? "\r\033[K" : "";
  if (!line.empty()) absl::StrAppend(&out, line, "\n");
  absl::StrAppend(&out, BarLine());
  bar_drawn_ = true;
  return out;
}

std::string WatchView::Finish() {
  if (!tty_ || !bar_drawn_) return "";
  bar_drawn_ = false;
  return absl::StrCat("\r\033[K", BarLine(), "\n");
}

}  // namespace conveyor::client
