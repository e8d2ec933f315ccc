// Conversions between Abseil's time types and the protobuf well-known types
// google.protobuf.Timestamp and google.protobuf.Duration: the one place the
// orchestrator, the CLI and the tools turn one into the other.
//
// For finite values within the protobuf ranges (years 1..9999, +-10000
// years) conversions are exact to the nanosecond and round-trip.
// Timestamps keep nanos in [0, 1e9), as the type requires, also before 1970;
// durations carry seconds and nanos of the same sign.
#ifndef CONVEYOR_COMMON_PROTO_TIME_H_
#define CONVEYOR_COMMON_PROTO_TIME_H_

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace conveyor {

google::protobuf::Timestamp ToProtoTime(absl::Time t);
absl::Time FromProtoTime(const google::protobuf::Timestamp& ts);
google::protobuf::Duration ToProtoDuration(absl::Duration d);
absl::Duration FromProtoDuration(const google::protobuf::Duration& d);

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_PROTO_TIME_H_
