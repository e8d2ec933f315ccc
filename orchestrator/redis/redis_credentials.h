// The orchestrator's Redis credentials: an ACL user (--redis-user) and a
// password read from a file (--redis-password-file), so the password is
// never in argv, where every local user can read it (ps, /proc/*/cmdline).
// A password in --redis-url still works, with a warning.
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_REDIS_CREDENTIALS_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_REDIS_CREDENTIALS_H_

#include <string>

#include "absl/status/status.h"
#include "orchestrator/redis/redis_connection.h"

namespace conveyor::orchestrator {

struct RedisCredentialFlags {
  std::string user;           // --redis-user; "" keeps the URL's (or none: user "default")
  std::string password_file;  // --redis-password-file; "" keeps the URL's
};

// Sets endpoint.user / endpoint.password from `flags`: the password file is
// read once (common/secret_file.h: one trailing newline stripped; empty and
// placeholder passwords refused). A password from the URL is checked the
// same way and logs a warning that argv is visible to other local users.
// FAILED_PRECONDITION / NOT_FOUND / PERMISSION_DENIED naming the flag (never
// the password) when the file is unusable, when the URL and a flag both give
// a user or a password, or when --redis-user comes without a password.
absl::Status ApplyRedisCredentials(const RedisCredentialFlags& flags, RedisEndpoint& endpoint);

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_REDIS_CREDENTIALS_H_
