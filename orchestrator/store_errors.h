// What a store error looks like to callers. A Redis error reply never
// reaches a caller verbatim: it becomes a precise status (OOM ->
// RESOURCE_EXHAUSTED STORE_OUT_OF_MEMORY, LOADING/BUSY/READONLY/... ->
// UNAVAILABLE, anything else INTERNAL naming only the Redis error class) and
// the raw text, which can name keys and script lines, is logged once, here.
#ifndef CONVEYOR_ORCHESTRATOR_STORE_ERRORS_H_
#define CONVEYOR_ORCHESTRATOR_STORE_ERRORS_H_

#include "absl/status/status.h"

namespace conveyor::orchestrator {

// OK and statuses not from a Redis error reply pass unchanged.
absl::Status PublicStoreError(const absl::Status& status);

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_STORE_ERRORS_H_
