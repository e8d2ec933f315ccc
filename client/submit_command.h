// How `submit` and `batch` send a chain whose source is a local file: the
// file is opened (and refused when empty) first, then streamed.
#ifndef CONVEYOR_CLIENT_SUBMIT_COMMAND_H_
#define CONVEYOR_CLIENT_SUBMIT_COMMAND_H_

#include <fstream>
#include <istream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/session.h"
#include "conveyor/v1/orchestrator.pb.h"

namespace conveyor::client {

// Opens a source file; INVALID_ARGUMENT naming `flag` if it cannot be read
// or is empty.
absl::StatusOr<std::unique_ptr<std::ifstream>> OpenSource(absl::string_view flag,
                                                          const std::string& path);

// StreamSubmitChain: `request` first, then the bytes of `in` as the source
// in kUploadChunkBytes chunks, under the --timeout deadline.
grpc::Status StreamSubmit(Session& session, const conveyor::v1::SubmitChainRequest& request,
                          std::istream& in, conveyor::v1::Chain* chain);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_SUBMIT_COMMAND_H_
