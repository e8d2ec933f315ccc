// How `submit` and `batch` send a chain: unary, or with a local file as the
// source, opened (and refused when empty) first, then streamed.
#ifndef CONVEYOR_CLIENT_SUBMIT_COMMAND_H_
#define CONVEYOR_CLIENT_SUBMIT_COMMAND_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/session.h"
#include "conveyor/v1/orchestrator.pb.h"

namespace conveyor::client {

// Sends `request`: with `file` empty by SubmitChain, else with the file
// streamed as the source (StreamSubmitChain, kUploadChunkBytes chunks),
// under the --timeout deadline. The outer status is INVALID_ARGUMENT naming
// `flag` when the file cannot be read or is empty (nothing is sent); the
// inner one is the call's.
absl::StatusOr<grpc::Status> SubmitFrom(Session& session,
                                        const conveyor::v1::SubmitChainRequest& request,
                                        absl::string_view flag, const std::string& file,
                                        conveyor::v1::Chain* chain);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_SUBMIT_COMMAND_H_
