#include "orchestrator/redis/redis_keys.h"

#include "absl/strings/str_cat.h"

namespace conveyor::orchestrator {

using conveyor::v1::Priority;
using conveyor::v1::StageKind;
using conveyor::v1::State;

std::string ChainMetaKey(absl::string_view id) { return absl::StrCat("cv:{", id, "}:meta"); }
std::string ChainEventsKey(absl::string_view id) { return absl::StrCat("cv:{", id, "}:events"); }
std::string ChainBlobKey(absl::string_view id, int index) {
  return absl::StrCat("cv:{", id, "}:blob:", index);
}

std::string ReadyStreamKey(Priority priority) {
  switch (priority) {
    case conveyor::v1::PRIORITY_HIGH:
      return "cv:{q}:ready:high";
    case conveyor::v1::PRIORITY_LOW:
      return "cv:{q}:ready:low";
    default:
      return "cv:{q}:ready:normal";
  }
}

std::string StateIndexKey(State state) {
  return absl::StrCat("cv:{q}:idx:state:", conveyor::v1::State_Name(state));
}

std::string LabelIndexKey(absl::string_view key, absl::string_view value) {
  return absl::StrCat("cv:{q}:idx:label:", key, "=", value);
}

std::string TenantIndexKey(absl::string_view tenant) {
  return absl::StrCat("cv:{q}:idx:tenant:", tenant);
}
// Tenant names have no ':' (IsTenantName), so "<t>:<key>" is unambiguous.
std::string IdempotencyKey(absl::string_view tenant, absl::string_view key) {
  return absl::StrCat("cv:{q}:idem:", tenant, ":", key);
}
std::string TenantBlobBytesKey(absl::string_view tenant) {
  return absl::StrCat("cv:{q}:tenant:", tenant, ":blob_bytes");
}
std::string TenantInFlightKey(absl::string_view tenant) {
  return absl::StrCat("cv:{q}:tenant:", tenant, ":in_flight");
}
std::string ReplicaKey(absl::string_view name) { return absl::StrCat("cv:{q}:replica:", name); }

}  // namespace conveyor::orchestrator
