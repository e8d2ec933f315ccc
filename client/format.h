// The pieces of the `conveyor` CLI's human and JSON output, as pure functions
// of protos and the current time: names, relative times, durations, sizes,
// tables, progress bars, step outputs, JSON. What each verb prints is built
// from them in chain_format.h, watch_view.h and batch_format.h. No I/O and no
// gRPC here, so tests/client/format_test.cc checks them exactly.
#ifndef CONVEYOR_CLIENT_FORMAT_H_
#define CONVEYOR_CLIENT_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "conveyor/v1/chain.pb.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/rpc/status.pb.h"

namespace conveyor::client {

// "SUCCEEDED", ...; "-" for STATE_UNSPECIFIED.
std::string StateName(conveyor::v1::State state);
// gRPC / google.rpc code name: "NOT_FOUND". Unknown numbers print as digits.
std::string CodeName(int code);

// Whether `t` is set (not the Unix epoch, an unset Timestamp's value).
bool HasTime(const google::protobuf::Timestamp& t);

// "just now", "42s ago", "5m ago", "3h ago", "2d ago", or "in 30s" for a time
// after `now`. "-" for the Unix epoch (an unset protobuf Timestamp).
std::string FormatRelativeTime(absl::Time t, absl::Time now);
// FormatRelativeTime of a Timestamp; "-" when unset.
std::string FormatRelativeTimestamp(const google::protobuf::Timestamp& t, absl::Time now);
// "850us", "184ms", "1.25s", "3m05s", "2h03m".
std::string ShortDuration(absl::Duration d);
// "512 B", "78.4 KiB", "2.0 MiB".
std::string FormatBytes(int64_t bytes);

// Left-aligned columns separated by two spaces; the header row first. Rows
// shorter than the header are padded with empty cells. Each line ends in
// '\n'; trailing spaces are trimmed.
std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

// "[##########..........]  50%" with `width` cells inside the brackets;
// percent is clamped to 0..100.
std::string ProgressBar(int percent, int width);

// The stage name of step `index` ("resize"); "" when `kinds` (the chain's
// steps, index-aligned) does not reach it.
std::string StageAt(const std::vector<conveyor::v1::StageKind>& kinds, int index);

// "CODE: message" of a google.rpc.Status.
std::string FormatRpcStatus(const google::rpc::Status& status);
// One-line summary of a step's output: "800x533 image/jpeg 78.4 KiB",
// "file:///out/a.jpg 78.4 KiB", "webhook HTTP 200 id=msg_... in 12ms".
std::string FormatStepOutput(const conveyor::v1::StepOutput& output);

// Proto JSON (lowerCamelCase names, enums as names). `pretty` adds
// indentation; otherwise one line, as `watch --json` prints per event.
std::string ToJson(const google::protobuf::Message& message, bool pretty);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_FORMAT_H_
