// GetSystemStatus: stage health (checked in parallel), queue counters,
// replicas and store usage.
#include <algorithm>
#include <thread>
#include <vector>

#include "common/stage_registry.h"
#include "orchestrator/chain_api.h"

namespace conveyor::orchestrator {

absl::StatusOr<conveyor::v1::SystemStatus> ChainApi::SystemStatus(const Caller& caller) {
  // Queue counters, replicas and store usage are the whole system's: for
  // admin callers only. Everyone else sees whether each stage serves.
  const bool details = caller.Has(Scope::kAdmin);
  conveyor::v1::SystemStatus status;
  // Health checks run in parallel, each bounded by health_timeout.
  const absl::Span<const StageInfo> stages = Stages();
  std::vector<StageHealth> health(stages.size());
  {
    std::vector<std::thread> checks;
    for (size_t i = 0; i < stages.size(); ++i) {
      checks.emplace_back(
          [&, i] { health[i] = stages_.CheckHealth(stages[i].kind, options_.health_timeout); });
    }
    for (std::thread& t : checks) t.join();
  }
  absl::StatusOr<absl::Duration> ping = store_.Ping();
  status.set_redis_reachable(ping.ok());
  if (ping.ok()) *status.mutable_redis_latency() = ToProtoDuration(*ping);
  absl::StatusOr<StoreStatus> stored =
      absl::PermissionDeniedError("store details are for admin callers");
  if (details) {
    stored = ping.ok() ? store_.Status(clock_.Now() - options_.lease_timeout)
                       : absl::StatusOr<StoreStatus>(ping.status());
  }
  for (size_t i = 0; i < stages.size(); ++i) {
    conveyor::v1::StageStatus* s = status.add_stages();
    s->set_kind(stages[i].kind);
    s->set_target(stages_.Target(stages[i].kind));
    s->set_max_in_flight(options_.max_in_flight);
    switch (health[i].state) {
      case StageHealth::State::kServing:
        s->set_health(conveyor::v1::StageStatus::SERVING);
        break;
      case StageHealth::State::kNotServing:
        s->set_health(conveyor::v1::StageStatus::NOT_SERVING);
        break;
      case StageHealth::State::kUnreachable:
        s->set_health(conveyor::v1::StageStatus::UNREACHABLE);
        break;
      case StageHealth::State::kWrongService:
        s->set_health(conveyor::v1::StageStatus::WRONG_SERVICE);
        break;
    }
    s->set_health_detail(health[i].detail);
    if (stored.ok()) {
      auto it = stored->stages.find(std::string(stages[i].name));
      if (it != stored->stages.end()) {
        s->set_queued(it->second.queued);
        s->set_in_flight(it->second.in_flight);
        s->set_waiting(it->second.waiting);
        s->set_succeeded(it->second.succeeded);
        s->set_failed(it->second.failed);
        s->set_retried(it->second.retried);
      }
    }
  }
  if (details) status.set_max_blob_bytes(options_.max_blob_bytes);
  status.set_redis_used_memory_bytes(-1);
  status.set_redis_max_memory_bytes(-1);
  if (stored.ok()) {
    status.set_blob_bytes(std::max<int64_t>(0, stored->blob_bytes));
    status.set_redis_used_memory_bytes(stored->redis_used_memory);
    status.set_redis_max_memory_bytes(stored->redis_max_memory);
    for (const ReplicaInfo& r : stored->replicas) {
      conveyor::v1::ReplicaStatus* out = status.add_replicas();
      out->set_name(r.name);
      out->set_address(r.address);
      *out->mutable_heartbeat_time() = ToProtoTime(r.heartbeat);
      int64_t n = 0;
      for (const auto& [stage, k] : r.in_flight) n += k;
      out->set_in_flight(n);
    }
    for (const auto& [state, n] : stored->chains_by_state) {
      (*status.mutable_chains_by_state())[state] = n;
    }
  }
  return details ? status : RedactSystemStatus(status, caller);
}

conveyor::v1::SystemStatus ChainApi::RedactSystemStatus(const conveyor::v1::SystemStatus& status,
                                                        const Caller& caller) {
  if (caller.Has(Scope::kAdmin)) return status;
  conveyor::v1::SystemStatus out;
  for (const conveyor::v1::StageStatus& stage : status.stages()) {
    conveyor::v1::StageStatus* s = out.add_stages();
    s->set_kind(stage.kind());
    s->set_target(stage.target());
    s->set_health(stage.health());
    s->set_health_detail(stage.health_detail());
    s->set_max_in_flight(stage.max_in_flight());
  }
  out.set_redis_reachable(status.redis_reachable());
  *out.mutable_redis_latency() = status.redis_latency();
  out.set_redis_used_memory_bytes(-1);
  out.set_redis_max_memory_bytes(-1);
  return out;
}

}  // namespace conveyor::orchestrator
