#include "client/format.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/chain_builder.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/error_details.pb.h"

namespace conveyor::client {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;
using conveyor::v1::StageKind;
using conveyor::v1::State;

bool IsSet(const google::protobuf::Timestamp& t) { return t.seconds() != 0 || t.nanos() != 0; }

std::string Relative(const google::protobuf::Timestamp& t, absl::Time now) {
  return IsSet(t) ? FormatRelativeTime(FromProtoTimestamp(t), now) : "-";
}

std::string KindAt(const std::vector<StageKind>& kinds, int index) {
  if (index < 0 || index >= static_cast<int>(kinds.size())) return "";
  return std::string(StageName(kinds[index]));
}

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
  if (!IsSet(step.start_time())) return "-";
  const absl::Time end = IsSet(step.end_time()) ? FromProtoTimestamp(step.end_time()) : now;
  return ShortDuration(end - FromProtoTimestamp(step.start_time()));
}

}  // namespace

std::string StateName(State state) {
  if (state == conveyor::v1::STATE_UNSPECIFIED) return "-";
  const std::string& name = conveyor::v1::State_Name(state);
  return name.empty() ? absl::StrCat(static_cast<int>(state)) : name;
}

std::string CodeName(int code) {
  if (code < 0 || code > 16) return absl::StrCat(code);
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

std::string FormatRelativeTime(absl::Time t, absl::Time now) {
  if (t == absl::UnixEpoch()) return "-";
  absl::Duration d = now - t;
  const bool future = d < absl::ZeroDuration();
  if (future) d = -d;
  if (d < absl::Seconds(1)) return "just now";
  std::string amount;
  if (d < absl::Minutes(1)) {
    amount = absl::StrCat(absl::ToInt64Seconds(d), "s");
  } else if (d < absl::Hours(1)) {
    amount = absl::StrCat(absl::ToInt64Minutes(d), "m");
  } else if (d < absl::Hours(24)) {
    amount = absl::StrCat(absl::ToInt64Hours(d), "h");
  } else {
    amount = absl::StrCat(absl::ToInt64Hours(d) / 24, "d");
  }
  return future ? absl::StrCat("in ", amount) : absl::StrCat(amount, " ago");
}

std::string ShortDuration(absl::Duration d) {
  if (d < absl::ZeroDuration()) return absl::StrCat("-", ShortDuration(-d));
  if (d < absl::Milliseconds(1)) return absl::StrCat(absl::ToInt64Microseconds(d), "us");
  if (d < absl::Seconds(1)) {
    const double ms = absl::ToDoubleMilliseconds(d);
    return ms < 10 ? absl::StrFormat("%.1fms", ms) : absl::StrFormat("%.0fms", ms);
  }
  if (d < absl::Minutes(1)) return absl::StrFormat("%.2fs", absl::ToDoubleSeconds(d));
  if (d < absl::Hours(1)) {
    const int64_t s = absl::ToInt64Seconds(d);
    return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  }
  const int64_t m = absl::ToInt64Minutes(d);
  return absl::StrFormat("%dh%02dm", m / 60, m % 60);
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < 1024 * 1024) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  if (bytes < int64_t{1024} * 1024 * 1024) {
    return absl::StrFormat("%.1f MiB", bytes / (1024.0 * 1024.0));
  }
  return absl::StrFormat("%.1f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
}

std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  const auto add_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      line += cell;
      if (i + 1 < widths.size()) line += std::string(widths[i] - cell.size() + 2, ' ');
    }
    absl::StripTrailingAsciiWhitespace(&line);
    absl::StrAppend(&out, line, "\n");
  };
  add_row(header);
  for (const auto& row : rows) add_row(row);
  return out;
}

std::string ProgressBar(int percent, int width) {
  percent = std::clamp(percent, 0, 100);
  const int filled = percent * width / 100;
  return absl::StrFormat("[%s%s] %3d%%", std::string(filled, '#'), std::string(width - filled, '.'),
                         percent);
}

std::string FormatRpcStatus(const google::rpc::Status& status) {
  return absl::StrCat(CodeName(status.code()), ": ", status.message());
}

std::string FormatStepOutput(const conveyor::v1::StepOutput& output) {
  switch (output.output_case()) {
    case conveyor::v1::StepOutput::kImage: {
      const auto& image = output.image();
      return absl::StrCat(image.width(), "x", image.height(), " ", image.media_type(), " ",
                          FormatBytes(image.size_bytes()));
    }
    case conveyor::v1::StepOutput::kStoredObject: {
      const auto& object = output.stored_object();
      return absl::StrCat(object.uri(), " ", FormatBytes(object.size_bytes()));
    }
    case conveyor::v1::StepOutput::kDelivery: {
      const auto& delivery = output.delivery();
      std::string text = absl::StrCat("webhook HTTP ", delivery.http_status());
      if (!delivery.delivery_id().empty()) absl::StrAppend(&text, " id=", delivery.delivery_id());
      if (delivery.has_latency()) {
        absl::StrAppend(&text, " in ", ShortDuration(FromProtoDuration(delivery.latency())));
      }
      return text;
    }
    default:
      return "";
  }
}

std::string FormatEventLine(const ChainEvent& event, const std::vector<StageKind>& kinds) {
  std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", FromProtoTimestamp(event.time()),
                                    absl::UTCTimeZone()),
                   " ", ChainEvent::Type_Name(event.type()));
  if (event.step_index() >= 0) {
    absl::StrAppend(&line, " step=", event.step_index());
    if (const std::string kind = KindAt(kinds, event.step_index()); !kind.empty()) {
      absl::StrAppend(&line, " ", kind);
    }
    if (event.attempt() > 0) absl::StrAppend(&line, " attempt=", event.attempt());
  }
  absl::StrAppend(&line, " state=", StateName(event.chain_state()),
                  " progress=", event.progress_percent(), "%");
  if (!event.worker().empty()) absl::StrAppend(&line, " worker=", event.worker());
  if (!event.coordinator().empty()) absl::StrAppend(&line, " coordinator=", event.coordinator());
  if (event.has_output()) {
    if (const std::string out = FormatStepOutput(event.output()); !out.empty()) {
      absl::StrAppend(&line, " output=\"", out, "\"");
    }
  }
  if (event.has_error()) {
    absl::StrAppend(&line, " error=\"", FormatRpcStatus(event.error()), "\"");
  }
  if (IsSet(event.next_attempt_time())) {
    absl::StrAppend(
        &line, " next_attempt=",
        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", FromProtoTimestamp(event.next_attempt_time()),
                         absl::UTCTimeZone()));
  }
  return line;
}

std::string FormatChain(const Chain& chain, absl::Time now) {
  std::vector<std::vector<std::string>> header_rows;
  header_rows.push_back({"Chain:", chain.name()});
  header_rows.push_back(
      {"State:", absl::StrCat(StateName(chain.state()), " (", chain.progress_percent(), "%)")});
  header_rows.push_back({"Created:", Relative(chain.create_time(), now)});
  header_rows.push_back({"Updated:", Relative(chain.update_time(), now)});
  if (IsSet(chain.end_time())) {
    header_rows.push_back(
        {"Ended:", absl::StrCat(Relative(chain.end_time(), now), " (took ",
                                ShortDuration(FromProtoTimestamp(chain.end_time()) -
                                              FromProtoTimestamp(chain.create_time())),
                                ")")});
  }
  if (IsSet(chain.deadline()))
    header_rows.push_back({"Deadline:", Relative(chain.deadline(), now)});
  if (chain.spec().priority() != conveyor::v1::PRIORITY_UNSPECIFIED) {
    header_rows.push_back(
        {"Priority:", absl::AsciiStrToLower(absl::StripPrefix(
                          conveyor::v1::Priority_Name(chain.spec().priority()), "PRIORITY_"))});
  }
  if (!chain.spec().labels().empty())
    header_rows.push_back({"Labels:", Labels(chain.spec().labels())});
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
    if (step.state() == conveyor::v1::RETRYING && IsSet(step.next_attempt_time())) {
      absl::StrAppend(&detail, " (next attempt ", Relative(step.next_attempt_time(), now), ")");
    }
    if (step.state() == conveyor::v1::PENDING && IsSet(step.waiting_since())) {
      detail = absl::StrCat("waiting for ", StageName(kind), ": ", step.waiting_reason(), " for ",
                            ShortDuration(now - FromProtoTimestamp(step.waiting_since())));
    }
    rows.push_back({absl::StrCat(step.index()), std::string(StageName(kind)), StateName(step.state()),
                    absl::StrCat(step.attempts()), StepElapsed(step, now),
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
    if (IsSet(chain.end_time()) && IsSet(chain.create_time())) {
      took = ShortDuration(FromProtoTimestamp(chain.end_time()) -
                           FromProtoTimestamp(chain.create_time()));
    }
    rows.push_back(
        {std::string(absl::StripPrefix(chain.name(), "chains/")), StateName(chain.state()),
         absl::StrCat(done, "/", std::max(chain.steps_size(), chain.spec().steps_size())),
         absl::StrJoin(stages, ">"), Relative(chain.create_time(), now), took, ErrorAt(chain),
         Labels(chain.spec().labels())});
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
    rows.push_back({std::string(StageName(stage.kind())), stage.target(), health, absl::StrCat(stage.queued()),
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
                          Relative(replica.heartbeat_time(), now),
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
    absl::StrAppend(&out, dry_run ? (retry ? "Would retry " : "Would cancel ")
                                  : (retry ? "Retried " : "Cancelled "),
                    chains(response.changed_count()), " of ", response.matched_count(),
                    " matching");
    if (response.skipped_count() > 0) {
      absl::StrAppend(&out, "; ", response.skipped_count(), " skipped (",
                      retry ? "not FAILED or CANCELLED" : "already finished",
                      ", or changed meanwhile)");
    }
    if (response.failed_count() > 0) absl::StrAppend(&out, "; ", response.failed_count(), " failed");
    absl::StrAppend(&out, dry_run ? " (dry run, nothing changed)" : "", "\n");
  }
  for (const std::string& name : response.changed_names()) absl::StrAppend(&out, "  ", name, "\n");
  if (response.changed_count() > response.changed_names_size() &&
      response.changed_names_size() > 0) {
    absl::StrAppend(&out, "  ... and ", response.changed_count() - response.changed_names_size(),
                    " more\n");
  }
  for (const auto& failure : response.failures()) {
    absl::StrAppend(&out, "failed: ", failure.name(), ": ", FormatRpcStatus(failure.error()),
                    "\n");
  }
  if (response.truncated()) {
    absl::StrAppend(&out,
                    "More chains may match: one call handles at most --max (10000 by default); "
                    "run it again to go on.\n");
  }
  return out;
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return "{}";
  // add_whitespace leaves a trailing newline; the caller adds its own.
  absl::StripTrailingAsciiWhitespace(&out);
  return out;
}

WatchView::WatchView(std::vector<StageKind> kinds, bool tty, int bar_width)
    : kinds_(std::move(kinds)), tty_(tty), bar_width_(bar_width) {}

std::string WatchView::BarLine() const {
  std::string line = absl::StrCat(ProgressBar(progress_, bar_width_), "  ", StateName(state_));
  if (current_step_ >= 0 && (state_ == conveyor::v1::RUNNING || state_ == conveyor::v1::RETRYING)) {
    absl::StrAppend(&line, "  step ", current_step_ + 1, "/", kinds_.size());
    if (const std::string kind = KindAt(kinds_, current_step_); !kind.empty()) {
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
  const absl::Time time = FromProtoTimestamp(event.time());
  // People count steps from 1 here, as the bar does ("step 2/5 resize").
  std::string step_name = absl::StrCat("step ", index + 1, "/", kinds_.size());
  if (const std::string kind = KindAt(kinds_, index); !kind.empty()) {
    absl::StrAppend(&step_name, " ", kind);
  }
  std::string line;  // a finished line above the bar, if any
  switch (event.type()) {
    case ChainEvent::STEP_STARTED:
      current_step_ = index;
      if (!step_start_.count(index)) step_start_[index] = time;
      if (auto it = waiting_.find(index); it != waiting_.end()) {
        line = absl::StrCat("  resume ", step_name, "  after waiting ",
                            ShortDuration(time - it->second.first), " for ",
                            KindAt(kinds_, index));
        waiting_.erase(it);
      }
      break;
    case ChainEvent::STEP_WAITING: {
      current_step_ = index;
      const std::string reason = FormatRpcStatus(event.error());
      waiting_[index] = {time, reason};
      line = absl::StrCat("  wait   ", step_name, "  waiting for ", KindAt(kinds_, index), ": ",
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
      if (IsSet(event.next_attempt_time())) {
        absl::StrAppend(&line, "; next ",
                        FormatRelativeTime(FromProtoTimestamp(event.next_attempt_time()), time));
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

std::string FormatBatchProgress(int done, int total, int succeeded, int failed, int running,
                                int bar_width) {
  const int percent = total > 0 ? done * 100 / total : 100;
  return absl::StrCat(ProgressBar(percent, bar_width), "  ", done, "/", total, "  ok ", succeeded,
                      "  failed ", failed, "  running ", running);
}

std::string FormatBatchItem(const BatchItemResult& item) {
  if (item.succeeded) {
    return absl::StrCat("ok    ", item.source, "  ", item.chain, "  ", ShortDuration(item.elapsed));
  }
  return absl::StrCat("FAIL  ", item.source, "  ", item.chain.empty() ? "" : item.chain + "  ",
                      item.reason);
}

std::string FormatBatchSummary(const std::vector<BatchItemResult>& items, absl::Duration wall) {
  int succeeded = 0;
  std::vector<const BatchItemResult*> failed;
  for (const auto& item : items) {
    if (item.succeeded) {
      ++succeeded;
    } else {
      failed.push_back(&item);
    }
  }
  const double seconds = absl::ToDoubleSeconds(wall);
  std::string out = absl::StrCat(
      "\n", items.size(), " chains: ", succeeded, " succeeded, ", failed.size(), " failed in ",
      ShortDuration(wall), " (",
      absl::StrFormat("%.2f", seconds > 0 ? static_cast<double>(items.size()) / seconds : 0.0),
      " chains/s)\n");
  if (!failed.empty()) {
    out += "Failed:\n";
    for (const BatchItemResult* item : failed) {
      absl::StrAppend(&out, "  ", item->source, ": ", item->reason, "\n");
    }
  }
  return out;
}

}  // namespace conveyor::client
