#include "client/format.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/proto_time.h"
#include "common/stage_registry.h"
#include "google/protobuf/util/json_util.h"

namespace conveyor::client {

using conveyor::v1::StageKind;
using conveyor::v1::State;

bool HasTime(const google::protobuf::Timestamp& t) { return t.seconds() != 0 || t.nanos() != 0; }

std::string FormatRelativeTimestamp(const google::protobuf::Timestamp& t, absl::Time now) {
  return HasTime(t) ? FormatRelativeTime(FromProtoTime(t), now) : "-";
}

std::string StageAt(const std::vector<StageKind>& kinds, int index) {
  if (index < 0 || index >= static_cast<int>(kinds.size())) return "";
  return std::string(StageName(kinds[index]));
}

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

}  // namespace conveyor::client
