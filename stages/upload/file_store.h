// Writes objects below one root directory, atomically, never outside it.
#ifndef CONVEYOR_STAGES_UPLOAD_FILE_STORE_H_
#define CONVEYOR_STAGES_UPLOAD_FILE_STORE_H_

#include <filesystem>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "conveyor/v1/stages.pb.h"
#include "stages/upload/object_key.h"

namespace conveyor::stages::upload {

// ErrorInfo reason of a path the file system cannot name (ENAMETOOLONG).
inline constexpr absl::string_view kReasonNameTooLong = "NAME_TOO_LONG";

// Thread-safe (no mutable state). Concurrent writers of one path each write
// their own temporary file; the last rename wins and readers only ever see a
// complete object.
//
// The escape check resolves symlinks that exist at check time; a process that
// can create symlinks inside the root concurrently could still race it, so the
// root must be writable only by this worker.
class FileStore {
 public:
  // Creates `root` (and parents) if missing. INVALID_ARGUMENT if `root` is not
  // absolute, FAILED_PRECONDITION if it cannot be created or is not a
  // directory.
  static absl::StatusOr<FileStore> Open(const std::filesystem::path& root);

  // The canonical root (symlinks resolved).
  const std::filesystem::path& root() const { return canonical_root_; }

  // The absolute path `dir`/`key` names, lexically normalized, after checking
  // that it lies strictly inside the root both lexically and with symlinks
  // resolved (std::filesystem::weakly_canonical). INVALID_ARGUMENT with
  // reason PATH_ESCAPES_ROOT otherwise, naming spec.destination when `dir`
  // itself is outside the root, spec.key_template when the key leads out
  // (through a symlink); INVALID_ARGUMENT reason NAME_TOO_LONG when a path
  // segment is over 243 bytes or the path over PATH_MAX (what would be
  // ENAMETOOLONG), naming the field it came from.
  absl::StatusOr<std::filesystem::path> Resolve(absl::string_view dir, absl::string_view key) const;

  // Writes `bytes` to Resolve(dir, key): creates missing directories, writes a
  // temporary file in the target's directory while hashing the bytes (SHA-256),
  // fsyncs it, renames it over the target and fsyncs the directory. An
  // existing object is replaced, unless overwrite.no_overwrite: then the
  // temporary file is link()ed into place (which never replaces), and an
  // existing object is left alone and reported written if it has the same
  // bytes, replaced if its xattr user.conveyor.origin equals
  // overwrite.origin (a retry of the same chain and step), and otherwise
  // refused with ALREADY_EXISTS reason OBJECT_EXISTS. Returns the object with
  // its file:// URI.
  // Codes: those of Resolve; CANCELLED if `cancelled` turns true mid-write;
  // RESOURCE_EXHAUSTED when the disk or quota is full; PERMISSION_DENIED when
  // the worker may not write there; FAILED_PRECONDITION when a path component
  // is not a directory or the target is a directory; INTERNAL otherwise.
  absl::StatusOr<conveyor::v1::StoredObject> Write(absl::string_view dir, absl::string_view key,
                                                   absl::string_view bytes,
                                                   absl::string_view media_type,
                                                   const std::function<bool()>& cancelled,
                                                   const OverwritePolicy& overwrite = {}) const;

 private:
  FileStore(std::filesystem::path lexical_root, std::filesystem::path canonical_root)
      : lexical_root_(std::move(lexical_root)), canonical_root_(std::move(canonical_root)) {}

  // As given (absolute, normalized) and with symlinks resolved: a destination
  // may spell the root either way.
  std::filesystem::path lexical_root_;
  std::filesystem::path canonical_root_;
};

}  // namespace conveyor::stages::upload

#endif  // CONVEYOR_STAGES_UPLOAD_FILE_STORE_H_
