// The only place absl::Status and grpc::Status meet.
//
// ToGrpcStatus is what a service returns at its edge; FromGrpcStatus is what a
// stage client (the orchestrator) reads back. Details travel as a serialized
// google.rpc.Status in grpc::Status's third argument, i.e. the standard
// `grpc-status-details-bin` trailer.
#ifndef CONVEYOR_COMMON_GRPC_STATUS_H_
#define CONVEYOR_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <cstddef>

#include "absl/status/status.h"

namespace conveyor {

// Bounds of what ToGrpcStatus sends. gRPC refuses a trailer block above the
// peer's metadata limit (8 KiB by default) and the client then sees
// RESOURCE_EXHAUSTED instead of our code; grpc-message is percent-encoded
// (up to 3x) and the details are base64 (4/3x), so together they stay well
// under 8 KiB whatever the input was.
inline constexpr size_t kMaxStatusMessageBytes = 1024;
inline constexpr size_t kMaxStatusDetailsBytes = 2048;

// The message is cut to kMaxStatusMessageBytes (marked "..."), texts inside
// BadRequest/ErrorInfo details are cut, and details are dropped from the end
// while the serialized google.rpc.Status exceeds kMaxStatusDetailsBytes.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_GRPC_STATUS_H_
