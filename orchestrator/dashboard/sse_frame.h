// Server-sent events framing (HTML Living Standard, "Server-sent events"):
// one event as the text/event-stream bytes a browser's EventSource parses.
#ifndef CONVEYOR_ORCHESTRATOR_DASHBOARD_SSE_FRAME_H_
#define CONVEYOR_ORCHESTRATOR_DASHBOARD_SSE_FRAME_H_

#include <string>

#include "absl/strings/string_view.h"

namespace conveyor::orchestrator::dashboard {

// "id: <id>\nevent: <event>\ndata: <line>\n...\n\n": every line of `data`
// its own data: field (the browser joins them with "\n"), `id` left out
// when empty. CR and LF in `event` and `id` are dropped: they would end the
// field early and let data forge another one.
std::string SseFrame(absl::string_view event, absl::string_view data, absl::string_view id = "");

// A comment line (": keep-alive\n\n"): keeps proxies from closing an idle
// stream, ignored by EventSource.
inline std::string SseComment() { return ": keep-alive\n\n"; }

}  // namespace conveyor::orchestrator::dashboard

#endif  // CONVEYOR_ORCHESTRATOR_DASHBOARD_SSE_FRAME_H_
