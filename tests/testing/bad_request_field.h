// The field a google.rpc.BadRequest payload of an absl::Status names
// (common/status_details.h's InvalidField attaches it). No gRPC here: tests
// of the pure core (chain_validator_test) link this alone; error_details.h
// reads the same back from a grpc::Status.
#ifndef CONVEYOR_TESTS_TESTING_BAD_REQUEST_FIELD_H_
#define CONVEYOR_TESTS_TESTING_BAD_REQUEST_FIELD_H_

#include <string>

#include "absl/status/status.h"

namespace conveyor::testing {

// The field of the BadRequest payload's one violation, or "" if there is
// no payload or it has another number of violations.
std::string BadRequestField(const absl::Status& status);

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_BAD_REQUEST_FIELD_H_
