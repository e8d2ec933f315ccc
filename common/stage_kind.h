// Names of the five stages, shared by the orchestrator and the CLI.
#ifndef CONVEYOR_COMMON_STAGE_KIND_H_
#define CONVEYOR_COMMON_STAGE_KIND_H_

#include "absl/strings/string_view.h"
#include "conveyor/v1/chain.pb.h"

namespace conveyor {

// "download", "resize", "filter", "upload", "webhook"; "unspecified" otherwise.
// Also the stage's name in Redis counters and in logs.
absl::string_view StageName(v1::StageKind kind);

// Which stage runs `step` (its oneof arm); STAGE_KIND_UNSPECIFIED if unset.
v1::StageKind StepKind(const v1::Step& step);

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_STAGE_KIND_H_
