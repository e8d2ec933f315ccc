// The CLI's token file: one bearer token, private to its owner. Refused, as
// ssh refuses a private key, when group or others have any access to it: a
// token another local user can read is a token they can use. Messages name
// no token; callers prefix them with the source (token_source.h).
#ifndef CONVEYOR_CLIENT_TOKEN_FILE_H_
#define CONVEYOR_CLIENT_TOKEN_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace conveyor::client {

// A token file larger than this is not a token file (a JWT is ~1 KiB; gRPC
// refuses metadata over 8 KiB anyway).
inline constexpr size_t kMaxTokenFileBytes = 8 * 1024;

// OK if `token` can go in an `authorization: Bearer` header: non-empty,
// printable ASCII, no spaces. INVALID_ARGUMENT otherwise, naming the first
// bad byte's offset (not its value).
absl::Status CheckTokenValue(absl::string_view token);

// The token in the file at `path`, trailing whitespace (the newline of
// `echo token > file`) stripped. NOT_FOUND when it does not exist,
// PERMISSION_DENIED when it cannot be read, FAILED_PRECONDITION when group
// or others may access it (mode & 077), it is not a regular file, is empty
// or over kMaxTokenFileBytes; CheckTokenValue's INVALID_ARGUMENT.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// Creates `path` holding `token` and a newline, mode 0600 whatever the
// umask, and its missing parent directories 0700. Never replaces a file:
// ALREADY_EXISTS when `path` exists (the token in it may be the only copy).
// Other failures: the errno's code (absl::ErrnoToStatus) naming the path,
// leaving no partial file.
absl::Status WriteNewTokenFile(const std::string& path, absl::string_view token);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_TOKEN_FILE_H_
