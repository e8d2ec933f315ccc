#include "orchestrator/redis/redis_credentials.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/secret_file.h"

namespace conveyor::orchestrator {

absl::Status ApplyRedisCredentials(const RedisCredentialFlags& flags, RedisEndpoint& endpoint) {
  if (!flags.user.empty()) {
    if (!endpoint.user.empty()) {
      return absl::FailedPreconditionError(
          "--redis-user: --redis-url names a user too; give it in one place");
    }
    endpoint.user = flags.user;
  }
  if (!flags.password_file.empty()) {
    if (!endpoint.password.empty()) {
      return absl::FailedPreconditionError(
          "--redis-password-file: --redis-url holds a password too; remove it from the URL");
    }
    absl::StatusOr<std::string> password = ReadSecretFile(flags.password_file);
    if (!password.ok()) {
      return absl::Status(password.status().code(),
                          absl::StrCat("--redis-password-file: ", password.status().message()));
    }
    endpoint.password = *std::move(password);
    return absl::OkStatus();
  }
  if (endpoint.password.empty()) {
    if (!flags.user.empty()) {
      return absl::FailedPreconditionError(
          "--redis-user needs --redis-password-file (Redis ACL users authenticate with a "
          "password)");
    }
    return absl::OkStatus();
  }
  if (absl::Status valid = CheckSecretValue(endpoint.password, "the password in --redis-url");
      !valid.ok()) {
    return valid;
  }
  LogLine(LogLevel::kWarning)
      .Add("msg",
           "the Redis password is in --redis-url: command lines and environments can be read "
           "by other local users; use --redis-password-file")
      .Add("redis", endpoint.Describe());
  return absl::OkStatus();
}

}  // namespace conveyor::orchestrator
