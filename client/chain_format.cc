#include "client/chain_format.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/format.h"
#include "common/proto_time.h"
#include "common/stage_registry.h"
#include "google/rpc/error_details.pb.h"

namespace conveyor::client {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::StageKind;
using conveyor::v1::State;

// The ErrorInfo reason among `status`'s details, or "".
std::string InfoReason(const google::rpc::Status& status) {
  for (const auto& any : status.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info) && !info.reason().empty()) return info.reason();
  }
  return "";
}

// What `list --stage K --error-reason R` matches on, for the table: the stage
// of the first step that did not succeed and the error's ErrorInfo reason
// (the chain's, else that step's), else its code name; "-" without an error.
// Mirrors orchestrator/chain_filter.cc, which the CLI does not link.
std::string ErrorAt(const Chain& chain) {
  if (!chain.has_error() || chain.error().code() == 0) return "-";
  int step = 0;
  while (step < chain.steps_size() && chain.steps(step).state() == conveyor::v1::SUCCEEDED) {
    ++step;
  }
  std::string reason = InfoReason(chain.error());
  if (reason.empty() && step < chain.steps_size()) reason = InfoReason(chain.steps(step).error());
  if (reason.empty()) reason = CodeName(chain.error().code());
  if (step >= chain.steps_size()) return reason;
  return absl::StrCat(StageName(chain.steps(step).kind()), ": ", reason);
}

std::string Labels(const google::protobuf::Map<std::string, std::string>& labels) {
  // Map order is unspecified; sort for stable output.
  std::vector<std::string> parts;
  for (const auto& [key, value] : labels) parts.push_back(absl::StrCat(key, "=", value));
  std::sort(parts.begin(), parts.end());
  return absl::StrJoin(parts, ",");
}

// Time from the first attempt to the end; for a running step, to `now`.
std::string StepElapsed(const conveyor::v1::StepStatus& step, absl::Time now) {
  if (step.has_duration()) return ShortDuration(FromProtoDuration(step.duration()));
  if (!HasTime(step.start_time())) return "-";
  const absl::Time end = HasTime(step.end_time()) ? FromProtoTime(step.end_time()) : now;
  return ShortDuration(end - FromProtoTime(step.start_time()));
}

}  // namespace

std::string FormatChain(const Chain& chain, absl::Time now) {
  std::vector<std::vector<std::string>> header_rows;
  header_rows.push_back({"Chain:", chain.name()});
  header_rows.push_back(
      {"State:", absl::StrCat(StateName(chain.state()), " (", chain.progress_percent(), "%)")});
  header_rows.push_back({"Created:", FormatRelativeTimestamp(chain.create_time(), now)});
  header_rows.push_back({"Updated:", FormatRelativeTimestamp(chain.update_time(), now)});
  if (HasTime(chain.end_time())) {
    header_rows.push_back(
        {"Ended:", absl::StrCat(FormatRelativeTimestamp(chain.end_time(), now), " (took ",
                                ShortDuration(FromProtoTime(chain.end_time()) -
                                              FromProtoTime(chain.create_time())),
                                ")")});
  }
  if (HasTime(chain.deadline()))
    header_rows.push_back({"Deadline:", FormatRelativeTimestamp(chain.deadline(), now)});
  if (chain.spec().priority() != conveyor::v1::PRIORITY_UNSPECIFIED) {
    header_rows.push_back(
        {"Priority:", absl::AsciiStrToLower(absl::StripPrefix(
                          conveyor::v1::Priority_Name(chain.spec().priority()), "PRIORITY_"))});
  }
  if (!chain.spec().labels().empty())
    header_rows.push_back({"Labels:", Labels(chain.spec().labels())});
  if (!chain.tenant().empty()) {
    header_rows.push_back({"Tenant:", chain.principal().empty()
                                          ? chain.tenant()
                                          : absl::StrCat(chain.tenant(), " (submitted by ",
                                                         chain.principal(), ")")});
  }
  if (!chain.idempotency_key().empty()) {
    header_rows.push_back({"Idempotency key:", chain.idempotency_key()});
  }
  if (chain.has_inline_source()) {
    const auto& src = chain.inline_source();
    header_rows.push_back(
        {"Source:", absl::StrCat("inline ", src.width(), "x", src.height(), " ", src.media_type(),
                                 " ", FormatBytes(src.size_bytes()))});
  }
  if (chain.retries() > 0) header_rows.push_back({"Retried:", absl::StrCat(chain.retries(), "x")});
  if (chain.has_error()) header_rows.push_back({"Error:", FormatRpcStatus(chain.error())});
  // Two-column key/value block: no header row, so render with an empty one.
  std::string out;
  {
    std::string block = RenderTable({"", ""}, header_rows);
    out += block.substr(block.find('\n') + 1);
  }

  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < chain.steps_size(); ++i) {
    const auto& step = chain.steps(i);
    StageKind kind = step.kind();
    if (kind == conveyor::v1::STAGE_KIND_UNSPECIFIED && i < chain.spec().steps_size()) {
      kind = StepKind(chain.spec().steps(i));
    }
    std::string detail;
    if (step.has_error() && step.state() != conveyor::v1::SUCCEEDED) {
      detail = FormatRpcStatus(step.error());
    } else if (step.has_output()) {
      detail = FormatStepOutput(step.output());
    }
    if (step.state() == conveyor::v1::RETRYING && HasTime(step.next_attempt_time())) {
      absl::StrAppend(&detail, " (next attempt ",
                      FormatRelativeTimestamp(step.next_attempt_time(), now), ")");
    }
    if (step.state() == conveyor::v1::PENDING && HasTime(step.waiting_since())) {
      detail = absl::StrCat("waiting for ", StageName(kind), ": ", step.waiting_reason(), " for ",
                            ShortDuration(now - FromProtoTime(step.waiting_since())));
    }
    rows.push_back({absl::StrCat(step.index()), std::string(StageName(kind)),
                    StateName(step.state()), absl::StrCat(step.attempts()), StepElapsed(step, now),
                    step.worker().empty() ? "-" : step.worker(), detail});
  }
  out += "\n";
  out += RenderTable({"#", "STAGE", "STATE", "ATTEMPTS", "TIME", "WORKER", "OUTPUT / ERROR"}, rows);
  if (chain.results_size() > 0) {
    out += "\nResults:\n";
    for (const auto& result : chain.results()) {
      absl::StrAppend(&out, "  ", result.uri(), "  ", FormatBytes(result.size_bytes()), "  ",
                      result.media_type());
      if (!result.sha256().empty()) absl::StrAppend(&out, "  sha256=", result.sha256());
      out += "\n";
    }
  }
  return out;
}

std::string FormatChainList(const conveyor::v1::ListChainsResponse& response, absl::Time now) {
  if (response.chains().empty()) return "No chains.\n";
  std::vector<std::vector<std::string>> rows;
  for (const Chain& chain : response.chains()) {
    int done = 0;
    for (const auto& step : chain.steps()) done += step.state() == conveyor::v1::SUCCEEDED;
    std::vector<std::string> stages;
    for (const auto& step : chain.spec().steps()) stages.emplace_back(StageName(StepKind(step)));
    std::string took = "-";
    if (HasTime(chain.end_time()) && HasTime(chain.create_time())) {
      took = ShortDuration(FromProtoTime(chain.end_time()) - FromProtoTime(chain.create_time()));
    }
    rows.push_back(
        {std::string(absl::StripPrefix(chain.name(), "chains/")), StateName(chain.state()),
         absl::StrCat(done, "/", std::max(chain.steps_size(), chain.spec().steps_size())),
         absl::StrJoin(stages, ">"), FormatRelativeTimestamp(chain.create_time(), now), took,
         ErrorAt(chain), Labels(chain.spec().labels())});
  }
  std::string out = RenderTable(
      {"CHAIN", "STATE", "STEPS", "STAGES", "CREATED", "TOOK", "ERROR", "LABELS"}, rows);
  if (!response.next_page_token().empty()) {
    absl::StrAppend(&out, "More: --page-token ", response.next_page_token(), "\n");
  }
  return out;
}

bool SystemHealthy(const conveyor::v1::SystemStatus& status) {
  if (!status.redis_reachable()) return false;
  for (const auto& stage : status.stages()) {
    if (stage.health() != conveyor::v1::StageStatus::SERVING) return false;
  }
  return true;
}

std::string FormatSystemStatus(const conveyor::v1::SystemStatus& status, absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  // The table holds the health's name only; reasons can be a hundred
  // characters (gRPC's connection errors) and go below it, one per line.
  std::vector<std::string> reasons;
  for (const auto& stage : status.stages()) {
    std::string health = "-";
    if (stage.health() != conveyor::v1::StageStatus::HEALTH_UNSPECIFIED) {
      health = conveyor::v1::StageStatus::Health_Name(stage.health());
    }
    if (stage.health() != conveyor::v1::StageStatus::SERVING) {
      std::string reason = absl::StrCat("  ", StageName(stage.kind()), ": ", health);
      if (!stage.health_detail().empty()) absl::StrAppend(&reason, ": ", stage.health_detail());
      reasons.push_back(std::move(reason));
    }
    rows.push_back({std::string(StageName(stage.kind())), stage.target(), health,
                    absl::StrCat(stage.queued()),
                    absl::StrCat(stage.in_flight(), "/", stage.max_in_flight()),
                    absl::StrCat(stage.succeeded()), absl::StrCat(stage.failed()),
                    absl::StrCat(stage.retried())});
  }
  std::string out = RenderTable(
      {"STAGE", "TARGET", "HEALTH", "QUEUED", "IN FLIGHT", "SUCCEEDED", "FAILED", "RETRIED"}, rows);
  if (!reasons.empty()) {
    absl::StrAppend(&out, "\nNot serving:\n", absl::StrJoin(reasons, "\n"), "\n");
  }
  absl::StrAppend(&out, "\nRedis: ", status.redis_reachable() ? "reachable" : "UNREACHABLE");
  if (status.redis_reachable() && status.has_redis_latency()) {
    absl::StrAppend(&out, " (PING ", ShortDuration(FromProtoDuration(status.redis_latency())), ")");
  }
  out += "\n";
  if (!status.replicas().empty()) {
    std::vector<std::vector<std::string>> replicas;
    for (const auto& replica : status.replicas()) {
      replicas.push_back({replica.name(), replica.address(),
                          FormatRelativeTimestamp(replica.heartbeat_time(), now),
                          absl::StrCat(replica.in_flight())});
    }
    out += "\n";
    out += RenderTable({"REPLICA", "ADDRESS", "HEARTBEAT", "IN FLIGHT"}, replicas);
  }
  if (!status.chains_by_state().empty()) {
    std::vector<std::string> parts;
    // Lifecycle order, then anything unexpected.
    std::vector<std::string> order;
    for (int s = conveyor::v1::PENDING; s <= conveyor::v1::CANCELLED; ++s) {
      order.push_back(conveyor::v1::State_Name(static_cast<State>(s)));
    }
    for (const std::string& name : order) {
      auto it = status.chains_by_state().find(name);
      if (it != status.chains_by_state().end())
        parts.push_back(absl::StrCat(name, "=", it->second));
    }
    std::vector<std::string> others;
    for (const auto& [name, count] : status.chains_by_state()) {
      if (std::find(order.begin(), order.end(), name) == order.end()) {
        others.push_back(absl::StrCat(name, "=", count));
      }
    }
    std::sort(others.begin(), others.end());
    parts.insert(parts.end(), others.begin(), others.end());
    absl::StrAppend(&out, "\nChains: ", absl::StrJoin(parts, "  "), "\n");
  }
  return out;
}

std::string FormatPurge(const conveyor::v1::PurgeChainsResponse& response, bool dry_run) {
  std::string out = absl::StrCat(dry_run ? "Would purge " : "Purged ", response.purged_count(),
                                 response.purged_count() == 1 ? " chain" : " chains",
                                 dry_run ? " (dry run, nothing deleted)" : "", "\n");
  for (const std::string& name : response.purged_names()) absl::StrAppend(&out, "  ", name, "\n");
  if (response.purged_count() > response.purged_names_size() && response.purged_names_size() > 0) {
    absl::StrAppend(&out, "  ... and ", response.purged_count() - response.purged_names_size(),
                    " more\n");
  }
  return out;
}

std::string FormatBulkResult(const conveyor::v1::BulkChainsResponse& response,
                             absl::string_view verb, bool dry_run) {
  const bool retry = verb == "retry";
  auto chains = [](int64_t n) { return absl::StrCat(n, n == 1 ? " chain" : " chains"); };
  std::string out;
  if (response.matched_count() == 0) {
    out = "No chains match the filter.\n";
  } else {
    absl::StrAppend(
        &out,
        dry_run ? (retry ? "Would retry " : "Would cancel ") : (retry ? "Retried " : "Cancelled "),
        chains(response.changed_count()), " of ", response.matched_count(), " matching");
    if (response.skipped_count() > 0) {
      absl::StrAppend(&out, "; ", response.skipped_count(), " skipped (",
                      retry ? "not FAILED or CANCELLED" : "already finished",
                      ", or changed meanwhile)");
    }
    if (response.failed_count() > 0)
      absl::StrAppend(&out, "; ", response.failed_count(), " failed");
    absl::StrAppend(&out, dry_run ? " (dry run, nothing changed)" : "", "\n");
  }
  for (const std::string& name : response.changed_names()) absl::StrAppend(&out, "  ", name, "\n");
  if (response.changed_count() > response.changed_names_size() &&
      response.changed_names_size() > 0) {
    absl::StrAppend(&out, "  ... and ", response.changed_count() - response.changed_names_size(),
                    " more\n");
  }
  for (const auto& failure : response.failures()) {
    absl::StrAppend(&out, "failed: ", failure.name(), ": ", FormatRpcStatus(failure.error()), "\n");
  }
  if (response.truncated()) {
    absl::StrAppend(&out,
                    "More chains may match: one call handles at most --max (10000 by default); "
                    "run it again to go on.\n");
  }
  return out;
}

}  // namespace conveyor::client
