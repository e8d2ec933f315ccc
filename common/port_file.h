// --port-file and --http-port-file: the port a server bound, for whoever
// started it with port 0 (tools/dev-up.sh, the tests' ServerProcess).
#ifndef CONVEYOR_COMMON_PORT_FILE_H_
#define CONVEYOR_COMMON_PORT_FILE_H_

#include <string>

#include "absl/status/status.h"

namespace conveyor {

// Writes `port` and a newline to `path` atomically (a temporary file in the
// same directory, then rename(2)), so a poller sees nothing or the whole
// number. INTERNAL with errno's words ("No such file or directory") when
// it cannot; the caller names the flag and the file.
absl::Status WritePortFile(const std::string& path, int port);

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_PORT_FILE_H_
