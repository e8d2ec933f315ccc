// What tests read back from a status's google.rpc details: the field a
// BadRequest names, the reason an ErrorInfo gives (common/status_details.h
// attaches them; common/grpc_status.h carries them over gRPC).
#ifndef CONVEYOR_TESTS_TESTING_ERROR_DETAILS_H_
#define CONVEYOR_TESTS_TESTING_ERROR_DETAILS_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "tests/testing/bad_request_field.h"  // BadRequestField(absl::Status)

namespace conveyor::testing {

// The field of the first google.rpc.BadRequest violation in `status`'s
// details, or "" if there is none.
std::string BadRequestField(const grpc::Status& status);

// The reason of the google.rpc.ErrorInfo in `status`'s details, or "".
std::string ErrorInfoReason(const grpc::Status& status);

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_ERROR_DETAILS_H_
