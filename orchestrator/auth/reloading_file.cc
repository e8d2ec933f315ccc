#include "orchestrator/auth/reloading_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace conveyor::orchestrator::auth {

absl::StatusOr<FileStamp> StampFile(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    const int error = errno;
    const std::string why = absl::StrCat("cannot read \"", path, "\": ", std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(why);
    if (error == EACCES) return absl::PermissionDeniedError(why);
    return absl::FailedPreconditionError(why);
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("\"", path, "\" is not a regular file"));
  }
  FileStamp stamp;
  stamp.device = info.st_dev;
  stamp.inode = info.st_ino;
  stamp.size = static_cast<int64_t>(info.st_size);
  stamp.mtime_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec;
  return stamp;
}

void LogReloadRefused(const std::string& what, const std::string& path, const absl::Status& why) {
  LogLine(LogLevel::kError)
      .Add("msg", absl::StrCat(what, " changed but is not valid; keeping the previous one"))
      .Add("path", path)
      .Add("error", why.message());
}

void LogReloaded(const std::string& what, const std::string& path) {
  LogLine(LogLevel::kInfo).Add("msg", absl::StrCat(what, " reloaded")).Add("path", path);
}

}  // namespace conveyor::orchestrator::auth
