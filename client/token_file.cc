#include "client/token_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace conveyor::client {
namespace {

// Group and others: any of their bits makes a token file too open.
constexpr mode_t kGroupOtherBits = S_IRWXG | S_IRWXO;

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
  // Closes now, for the error close() may report after buffered writes.
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// "cannot <what> "<path>": <strerror>", with the errno's code (ErrnoToStatus
// appends the strerror text).
absl::Status Errno(int error, absl::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(error, absl::StrCat("cannot ", what, " \"", path, "\""));
}

// The missing directories above a new token file, outermost first, 0700:
// only their owner needs to list them (as ~/.ssh).
absl::Status MakePrivateDirectories(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> missing;
  std::error_code error;
  for (std::filesystem::path d = dir; !d.empty() && !std::filesystem::exists(d, error);
       d = d.parent_path()) {
    missing.push_back(d);
    if (d == d.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0700) != 0) {
      if (errno == EEXIST) continue;  // made meanwhile: not ours to chmod
      return Errno(errno, "create directory", it->string());
    }
    // As for the file: the umask may have taken the owner's own bits.
    if (::chmod(it->c_str(), 0700) != 0) return Errno(errno, "chmod", it->string());
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, absl::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno(n < 0 ? errno : EIO, "write", path);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckTokenValue(absl::string_view token) {
  if (token.empty()) return absl::InvalidArgumentError("the token is empty");
  for (size_t i = 0; i < token.size(); ++i) {
    const auto c = static_cast<unsigned char>(token[i]);
    // What an HTTP/2 header value may carry, minus the space that would end
    // the token inside "Bearer <token>".
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(
          absl::StrCat("the token has a space, control or non-ASCII byte at offset ", i,
                       "; a token is printable ASCII without spaces, alone on one line"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  // O_NONBLOCK: a FIFO must not hang the CLI before fstat refuses it.
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    const int error = errno;
    if (error == ENOENT || error == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat("\"", path, "\" does not exist"));
    }
    if (error == EACCES)
      return absl::PermissionDeniedError(
          absl::StrCat("cannot read \"", path, "\": ", std::strerror(error)));
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read \"", path, "\": ", std::strerror(error)));
  }
  // fstat on the open file: what is checked is what is read.
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return Errno(errno, "stat", path);
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("\"", path, "\" is not a regular file"));
  }
  if ((info.st_mode & kGroupOtherBits) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "permissions %04o for \"%s\" are too open: other users must not be able to read a "
        "token file (as ssh requires of keys); run chmod 600 %s",
        info.st_mode & 07777, path, path));
  }
  // One byte over the limit tells "too large" from "exactly the limit".
  std::string text(kMaxTokenFileBytes + 1, '\0');
  size_t size = 0;
  while (size < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + size, text.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(errno, "read", path);
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  if (size > kMaxTokenFileBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", path, "\" is over ", kMaxTokenFileBytes, " bytes: not a token file"));
  }
  text.resize(size);
  absl::StripTrailingAsciiWhitespace(&text);
  if (text.empty()) return absl::FailedPreconditionError(absl::StrCat("\"", path, "\" is empty"));
  if (absl::Status valid = CheckTokenValue(text); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", path, "\": ", valid.message()));
  }
  return text;
}

absl::Status WriteNewTokenFile(const std::string& path, absl::string_view token) {
  if (absl::Status valid = CheckTokenValue(token); !valid.ok()) return valid;
  if (absl::Status dirs = MakePrivateDirectories(std::filesystem::path(path).parent_path());
      !dirs.ok()) {
    return dirs;
  }
  // O_EXCL: never replace a token; O_NOFOLLOW: never write through a link
  // someone else planted.
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(
          absl::StrCat("\"", path, "\" exists; remove it first to replace its token"));
    }
    return Errno(errno, "create", path);
  }
  absl::Status written = absl::OkStatus();
  // The umask may have taken bits off 0600 (0400 under umask 0277): the CLI
  // must be able to read it back, and only the owner.
  if (::fchmod(fd.get(), 0600) != 0) written = Errno(errno, "chmod", path);
  if (written.ok()) written = WriteAll(fd.get(), absl::StrCat(token, "\n"), path);
  if (written.ok() && ::fsync(fd.get()) != 0) written = Errno(errno, "sync", path);
  if (fd.Close() != 0 && written.ok()) written = Errno(errno, "close", path);
  if (!written.ok()) ::unlink(path.c_str());
  return written;
}

}  // namespace conveyor::client
