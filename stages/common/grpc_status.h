// The only place absl::Status and grpc::Status meet.
//
// ToGrpcStatus is what a service returns at its edge; FromGrpcStatus is what a
// stage client (the orchestrator) reads back. Details travel as a serialized
// google.rpc.Status in grpc::Status's third argument, i.e. the standard
// `grpc-status-details-bin` trailer.
#ifndef CONVEYOR_STAGES_COMMON_GRPC_STATUS_H_
#define CONVEYOR_STAGES_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace conveyor {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace conveyor

#endif  // CONVEYOR_STAGES_COMMON_GRPC_STATUS_H_
