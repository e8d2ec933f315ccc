// What the work of one call may know about the call, without gRPC: so that
// logic libraries can take it. Filled by the unary runner (unary_call.h).
#ifndef CONVEYOR_COMMON_CALL_SCOPE_H_
#define CONVEYOR_COMMON_CALL_SCOPE_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace conveyor {

struct CallScope {
  // True once the client cancelled or the deadline passed; check it between
  // units of work and stop early.
  std::function<bool()> cancelled;
  // The call's deadline (absl::InfiniteFuture() if none).
  absl::Time deadline = absl::InfiniteFuture();
  // Extra key=value pairs for the request's log line (sizes, dimensions...).
  std::vector<std::pair<std::string, std::string>> log_fields;
};

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_CALL_SCOPE_H_
