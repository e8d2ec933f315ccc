#include "stages/upload/file_store.h"

#include <fcntl.h>
#include <linux/limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/status_details.h"
#include "stages/upload/destination.h"
#include "stages/upload/s3_store.h"
#include "common/sha256.h"

namespace conveyor::stages::upload {
namespace {

namespace fs = std::filesystem;

// Bytes written between two cancellation checks.
constexpr size_t kWriteChunkBytes = 1 << 20;
// Where the origin of an object is recorded (see OverwritePolicy).
constexpr char kOriginXattr[] = "user.conveyor.origin";
// The temporary file is ".<name>.tmp-XXXXXX": 12 bytes more than the name,
// and the whole must fit NAME_MAX (255).
constexpr size_t kMaxFileNameBytes = NAME_MAX - 12;

absl::Status NameTooLong(absl::string_view field, absl::string_view why) {
  return WithErrorReason(InvalidField(field, why), kReasonNameTooLong);
}

// ENAMETOOLONG before the file system says it: a segment or the whole path
// too long is the caller's key, not an escape and not a server fault.
absl::Status CheckNameLengths(absl::string_view field, const fs::path& path) {
  if (path.native().size() >= PATH_MAX) {
    return NameTooLong(field, absl::StrCat("the path is ", path.native().size(),
                                           " bytes; the file system allows ", PATH_MAX - 1));
  }
  for (const fs::path& part : path) {
    if (part.native().size() > kMaxFileNameBytes) {
      return NameTooLong(field, absl::StrCat("a path segment is ", part.native().size(),
                                             " bytes; want at most ", kMaxFileNameBytes,
                                             " per segment"));
    }
  }
  return absl::OkStatus();
}

// Lexically normal, without the trailing separator lexically_normal() keeps
// for "a/b/.." ("a/").
fs::path Normal(const fs::path& path) {
  fs::path normal = path.lexically_normal();
  if (!normal.has_filename() && normal != normal.root_path()) normal = normal.parent_path();
  return normal;
}

// True if `path` is strictly below `root` (both absolute and normalized).
bool StrictlyInside(const fs::path& path, const fs::path& root) {
  const fs::path relative = path.lexically_relative(root);
  if (relative.empty() || relative == ".") return false;
  return *relative.begin() != "..";
}

// Inside if below either spelling of the root, lexically and once resolved.
bool Contained(const fs::path& path, const fs::path& lexical_root, const fs::path& canonical_root,
               bool allow_equal) {
  const auto inside = [&](const fs::path& p) {
    if (allow_equal && (p == lexical_root || p == canonical_root)) return true;
    return StrictlyInside(p, lexical_root) || StrictlyInside(p, canonical_root);
  };
  if (!inside(path)) return false;
  std::error_code error;
  const fs::path resolved = fs::weakly_canonical(path, error);
  // Resolve checks name lengths first; any error left is a refusal.
  if (error) return false;
  if (allow_equal && resolved == canonical_root) return true;
  return StrictlyInside(resolved, canonical_root);
}

absl::Status Escapes(absl::string_view field, absl::string_view what, const fs::path& path) {
  return WithErrorReason(
      InvalidField(field, absl::StrCat(what, " \"", path.string(),
                                       "\" is outside the worker's --file-root")),
      "PATH_ESCAPES_ROOT");
}

absl::Status ErrnoStatus(int error, absl::string_view action, const fs::path& path) {
  const std::string message =
      absl::StrCat(action, " \"", path.string(), "\": ", std::strerror(error));
  switch (error) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENAMETOOLONG:
      return WithErrorReason(absl::InvalidArgumentError(message), kReasonNameTooLong);
    case ENOTDIR:
    case EISDIR:
    case EEXIST:
    case ELOOP:
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

// Owns a temporary file until it is renamed into place.
class TempFile {
 public:
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  absl::Status Create(const fs::path& target) {
    std::string pattern =
        (target.parent_path() / absl::StrCat(".", target.filename().string(), ".tmp-XXXXXX"))
            .string();
    fd_ = ::mkostemp(pattern.data(), O_CLOEXEC);
    if (fd_ < 0) return ErrnoStatus(errno, "create a temporary file next to", target);
    path_ = pattern;
    // mkostemp makes the file 0600; objects are meant to be read by others.
    if (::fchmod(fd_, 0644) != 0) return ErrnoStatus(errno, "chmod", path_);
    return absl::OkStatus();
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  absl::Status Close() {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return ErrnoStatus(errno, "close", path_);
    return absl::OkStatus();
  }
  // After a successful rename there is nothing left to remove.
  void Release() { path_.clear(); }

 private:
  int fd_ = -1;
  std::string path_;
};

absl::Status WriteAll(int fd, absl::string_view bytes, Sha256& hash,
                      const std::function<bool()>& cancelled, const fs::path& path) {
  while (!bytes.empty()) {
    if (cancelled && cancelled()) return absl::CancelledError("upload cancelled while writing");
    const absl::string_view chunk = bytes.substr(0, kWriteChunkBytes);
    size_t done = 0;
    while (done < chunk.size()) {
      const ssize_t n = ::write(fd, chunk.data() + done, chunk.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "write", path);
      }
      done += static_cast<size_t>(n);
    }
    hash.Update(chunk);
    bytes.remove_prefix(chunk.size());
  }
  return absl::OkStatus();
}

absl::Status SyncDirectory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open directory", dir);
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(error, "fsync directory", dir);
  return absl::OkStatus();
}

// The recorded origin of the object at `path`, or "" if none.
std::string OriginOf(const fs::path& path) {
  char value[256];
  const ssize_t n = ::getxattr(path.c_str(), kOriginXattr, value, sizeof(value));
  return n > 0 ? std::string(value, static_cast<size_t>(n)) : std::string();
}

// True if the regular file at `path` holds `size` bytes whose SHA-256 is
// `sha256_hex`.
bool SameContent(const fs::path& path, size_t size, const std::string& sha256_hex) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  struct stat info {};
  bool same = ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode) &&
              static_cast<size_t>(info.st_size) == size;
  if (same) {
    Sha256 hash;
    std::string buffer(1 << 16, '\0');
    for (;;) {
      const ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        same = false;
        break;
      }
      if (n == 0) break;
      hash.Update(absl::string_view(buffer.data(), static_cast<size_t>(n)));
    }
    same = same && hash.FinishHex() == sha256_hex;
  }
  ::close(fd);
  return same;
}

}  // namespace

absl::StatusOr<FileStore> FileStore::Open(const fs::path& root) {
  if (!root.is_absolute()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--file-root: want an absolute path, got \"", root.string(), "\""));
  }
  std::error_code error;
  fs::create_directories(root, error);
  if (error || !fs::is_directory(root)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--file-root \"", root.string(), "\": cannot create it as a directory",
                     error ? absl::StrCat(" (", error.message(), ")") : ""));
  }
  fs::path canonical = fs::canonical(root, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("--file-root \"", root.string(), "\": ", error.message()));
  }
  return FileStore(Normal(root), std::move(canonical));
}

absl::StatusOr<fs::path> FileStore::Resolve(absl::string_view dir, absl::string_view key) const {
  const fs::path dir_path = Normal(fs::path(std::string(dir)));
  if (!dir_path.is_absolute()) {
    return InvalidField("spec.destination",
                        absl::StrCat("want an absolute directory, got ", QuoteForMessage(dir)));
  }
  if (absl::Status s = CheckNameLengths("spec.destination", dir_path); !s.ok()) return s;
  if (!Contained(dir_path, lexical_root_, canonical_root_, /*allow_equal=*/true)) {
    return Escapes("spec.destination", "directory", dir_path);
  }
  const fs::path target = Normal(dir_path / std::string(key));
  if (absl::Status s = CheckNameLengths("spec.key_template", target); !s.ok()) return s;
  if (!Contained(target, lexical_root_, canonical_root_, /*allow_equal=*/false)) {
    return Escapes("spec.key_template", "object", target);
  }
  return target;
}

absl::StatusOr<conveyor::v1::StoredObject> FileStore::Write(
    absl::string_view dir, absl::string_view key, absl::string_view bytes,
    absl::string_view media_type, const std::function<bool()>& cancelled,
    const OverwritePolicy& overwrite) const {
  absl::StatusOr<fs::path> target = Resolve(dir, key);
  if (!target.ok()) return target.status();
  const fs::path parent = target->parent_path();

  std::error_code error;
  fs::create_directories(parent, error);
  if (error) return ErrnoStatus(error.value(), "create directory", parent);
  // Re-check now that the directories exist: shortens the window in which a
  // symlink swapped in could redirect the write.
  if (!Contained(*target, lexical_root_, canonical_root_, /*allow_equal=*/false)) {
    return Escapes("spec.key_template", "object", *target);
  }

  TempFile temp;
  if (absl::Status s = temp.Create(*target); !s.ok()) return s;
  if (!overwrite.origin.empty()) {
    // Best effort: a file system without user xattrs still gets the
    // same-content rule of --no-overwrite.
    ::fsetxattr(temp.fd(), kOriginXattr, overwrite.origin.data(), overwrite.origin.size(), 0);
  }
  Sha256 hash;
  if (absl::Status s = WriteAll(temp.fd(), bytes, hash, cancelled, temp.path()); !s.ok()) {
    return s;
  }
  if (::fsync(temp.fd()) != 0) return ErrnoStatus(errno, "fsync", temp.path());
  if (absl::Status s = temp.Close(); !s.ok()) return s;
  if (cancelled && cancelled()) return absl::CancelledError("upload cancelled before rename");
  conveyor::v1::StoredObject object;
  object.set_uri(FileUri(target->string()));
  object.set_size_bytes(static_cast<int64_t>(bytes.size()));
  object.set_sha256(hash.FinishHex());
  object.set_media_type(std::string(media_type));

  if (overwrite.no_overwrite) {
    // link() never replaces: it is the O_EXCL of a rename.
    if (::link(temp.path().c_str(), target->c_str()) == 0) {
      if (absl::Status s = SyncDirectory(parent); !s.ok()) return s;
      return object;  // TempFile's destructor unlinks the temporary name
    }
    if (errno != EEXIST) return ErrnoStatus(errno, "link into", *target);
    if (SameContent(*target, bytes.size(), object.sha256())) return object;  // idempotent
    if (OriginOf(*target) != overwrite.origin || overwrite.origin.empty()) {
      return ObjectExists(object.uri());
    }
    // The same chain and step wrote it (an earlier attempt): replace it.
  }
  if (::rename(temp.path().c_str(), target->c_str()) != 0) {
    return ErrnoStatus(errno, "rename into", *target);
  }
  temp.Release();
  if (absl::Status s = SyncDirectory(parent); !s.ok()) return s;
  return object;
}

}  // namespace conveyor::stages::upload
