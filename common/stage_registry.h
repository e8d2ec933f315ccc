// The stage registry: one row per stage, the only place that lists them.
// The validator (what a step consumes and produces), the scheduler, the
// dispatcher (what a call carries), the stores (per-stage counters), the API
// (system status), the orchestrator's flags and default targets, the stage
// client (service and method), the CLI and the deploy checks all read it.
// Adding a stage is a row here, its messages in proto/conveyor/v1/, and its
// worker folder under stages/ (docs/architecture.md, "How to add a stage";
// tests/common/stage_registry_test.cc checks the rest of the tree agrees).
#ifndef CONVEYOR_COMMON_STAGE_REGISTRY_H_
#define CONVEYOR_COMMON_STAGE_REGISTRY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "conveyor/v1/chain.pb.h"

namespace conveyor {

// What flows from one step to the next.
enum class DataKind {
  kNothing,       // a chain without an inline source, before its first step
  kImage,         // image bytes (blob) with their ImageInfo
  kStoredObject,  // where an upload put the image
  kAny,           // consumes: anything but kNothing; produces: its input, passed on
};

// "nothing", "an image", "a stored object", "anything".
absl::string_view DataKindName(DataKind kind);

struct StageInfo {
  v1::StageKind kind;
  // The arm of conveyor.v1.Step's `kind` oneof this stage runs.
  v1::Step::KindCase step_case;
  // Lower case: flags (--resize-target), counters, logs, the CLI, deploy
  // names (conveyor-resize).
  absl::string_view name;
  // The worker's gRPC service (also its health service name) and the one
  // unary method the orchestrator calls. The request carries a StepContext,
  // the step's spec, and an Image when the stage consumes one (a
  // ChainReport when it reports outputs); the response's Image,
  // StoredObject or WebhookDelivery becomes the step's output.
  absl::string_view service;
  absl::string_view method;
  // kNothing: it only starts a chain that came without an image.
  DataKind consumes;
  DataKind produces;
  // The request carries a report of every earlier step's output.
  bool reports_outputs;
  // Where dev-up and the orchestrator's default target put the worker.
  int default_port;
  // Checks the step's own spec; `field` names it ("spec.steps[2].resize").
  absl::Status (*check_spec)(absl::string_view field, const v1::Step& step);
};

// Every stage, in the order a chain usually runs them (and the order of
// StageKind's values).
absl::Span<const StageInfo> Stages();
// nullptr when `kind` names no stage.
const StageInfo* FindStage(v1::StageKind kind);
// By name, ignoring case; nullptr when none has it.
const StageInfo* FindStageByName(absl::string_view name);
// The stage that runs `step` (its oneof arm); nullptr if none is set.
const StageInfo* StageOfStep(const v1::Step& step);

// The stage's name; "unspecified" when `kind` names no stage.
absl::string_view StageName(v1::StageKind kind);
// Which stage runs `step`; STAGE_KIND_UNSPECIFIED if unset.
v1::StageKind StepKind(const v1::Step& step);
// "download, resize, filter, upload, webhook" (`separator` between them).
std::string StageNames(absl::string_view separator = ", ");

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_STAGE_REGISTRY_H_
