// The terminal side every verb shares: error lines and the exit codes they
// map to (commands.h), input files, the confirmation prompt, and printing a
// result as a table or, with --json, as proto JSON.
#ifndef CONVEYOR_CLIENT_CLI_IO_H_
#define CONVEYOR_CLIENT_CLI_IO_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/commands.h"
#include "client/token_source.h"
#include "conveyor/v1/chain.pb.h"
#include "google/protobuf/message.h"

namespace conveyor::client {

// Prints "error: <message>" and the --help hint to stderr; returns kExitUsage.
int UsageError(const absl::Status& status);

// The "hint: " line (connection_hint.h) for a failed call, or "": for an
// UNAVAILABLE from a TLS failure, and for UNAUTHENTICATED / PERMISSION_DENIED
// naming the token `sent` (its source, never the token).
std::string RpcErrorHint(const grpc::Status& status, const TokenSource& sent);

// "error: CODE: message", then any BadRequest field violations the message
// does not already spell out, one per line, then RpcErrorHint's line.
std::string RpcErrorText(const grpc::Status& status, const TokenSource& sent);
// Prints RpcErrorText to stderr; returns kExitRpcError.
int RpcError(const grpc::Status& status, const TokenSource& sent);

// The whole of `path` ("-": stdin). INVALID_ARGUMENT naming `flag` when it
// cannot be read.
absl::StatusOr<std::string> ReadWholeFile(absl::string_view flag, const std::string& path);

// A duration flag that may be left out: InfiniteDuration() then.
absl::StatusOr<absl::Duration> OptionalDuration(absl::string_view flag, const std::string& text);

bool StdoutIsTerminal();

// The bulk verbs' confirmation. Returns kExitOk to go on, else the exit code:
// kExitUsage without a terminal on stdin (scripts must say --yes), and
// kExitChainFailed when the answer is not yes. The prompt goes to stderr so
// that stdout stays the command's output (--json).
int Confirm(absl::string_view verb, int64_t count);

// With --json, `message` as pretty proto JSON and a newline; else `text`.
void PrintResult(const GlobalOptions& global, const google::protobuf::Message& message,
                 const std::string& text);
// "chains/... STATE" (or the chain's JSON): what cancel and retry print.
void PrintChainState(const GlobalOptions& global, const conveyor::v1::Chain& chain);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_CLI_IO_H_
