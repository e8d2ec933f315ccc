// A value parsed from a file and parsed again when the file changes: the
// tokens file and the JWT keys file, rotated without a restart.
//
// Get() checks the file at most once per `interval`, on the call that finds
// the interval passed (no thread of its own): stat(2) only, and a read and
// parse only when device, inode, size or mtime changed, so a call pays a
// stat once a second at most. Kubernetes replaces a Secret volume's files by
// swapping a symlink: stat follows it, and the inode changes.
//
// A changed file that no longer parses is logged once (level=error, with
// the parser's message, which names file:line) and the previous value stays
// in force: a bad edit must not lock every caller out. A file that reverts
// to a good state is picked up on the next check.
//
// Thread-safe; Get() returns a snapshot that stays valid while held.
#ifndef CONVEYOR_ORCHESTRATOR_AUTH_RELOADING_FILE_H_
#define CONVEYOR_ORCHESTRATOR_AUTH_RELOADING_FILE_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "orchestrator/clock.h"

namespace conveyor::orchestrator::auth {

// What stat(2) says about a file's current content.
struct FileStamp {
  dev_t device = 0;
  ino_t inode = 0;
  int64_t size = -1;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp& other) const {
    return device == other.device && inode == other.inode && size == other.size &&
           mtime_ns == other.mtime_ns;
  }
  bool operator!=(const FileStamp& other) const { return !(*this == other); }
};

// The stamp of `path` (following symlinks); NOT_FOUND / PERMISSION_DENIED /
// FAILED_PRECONDITION naming the path.
absl::StatusOr<FileStamp> StampFile(const std::string& path);

// Logs the refusal of a changed file (once per change, by ReloadingFile).
void LogReloadRefused(const std::string& what, const std::string& path, const absl::Status& why);
// Logs that a changed file is in force.
void LogReloaded(const std::string& what, const std::string& path);

template <typename T>
class ReloadingFile {
 public:
  // Reads and parses `path`; parse(path) -> absl::StatusOr<T>.
  using Parser = std::function<absl::StatusOr<T>(const std::string& path)>;

  // The parser's error if the file does not parse now (at start a bad file
  // is the operator's to fix, not to run without). `what` names the file in
  // log lines ("tokens file"). `clock` must outlive the result.
  static absl::StatusOr<std::unique_ptr<ReloadingFile>> Load(std::string what, std::string path,
                                                             Parser parse, const Clock& clock,
                                                             absl::Duration interval) {
    absl::StatusOr<FileStamp> stamp = StampFile(path);
    if (!stamp.ok()) return stamp.status();
    absl::StatusOr<T> value = parse(path);
    if (!value.ok()) return value.status();
    return std::unique_ptr<ReloadingFile>(
        new ReloadingFile(std::move(what), std::move(path), std::move(parse), clock, interval,
                          *stamp, std::make_shared<const T>(*std::move(value))));
  }

  // The value of the file as last parsed successfully.
  std::shared_ptr<const T> Get() const {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    if (now - last_check_ < interval_) return value_;
    last_check_ = now;
    absl::StatusOr<FileStamp> stamp = StampFile(path_);
    if (stamp.ok() && *stamp == seen_) return value_;
    if (!stamp.ok()) {
      // Gone or unreadable: the same as a bad edit, logged once.
      if (!missing_) LogReloadRefused(what_, path_, stamp.status());
      missing_ = true;
      return value_;
    }
    missing_ = false;
    seen_ = *stamp;
    absl::StatusOr<T> value = parse_(path_);
    if (!value.ok()) {
      LogReloadRefused(what_, path_, value.status());
      return value_;
    }
    value_ = std::make_shared<const T>(*std::move(value));
    LogReloaded(what_, path_);
    return value_;
  }

 private:
  ReloadingFile(std::string what, std::string path, Parser parse, const Clock& clock,
                absl::Duration interval, FileStamp stamp, std::shared_ptr<const T> value)
      : what_(std::move(what)),
        path_(std::move(path)),
        parse_(std::move(parse)),
        clock_(clock),
        interval_(interval),
        last_check_(clock.Now()),
        seen_(stamp),
        value_(std::move(value)) {}

  const std::string what_;
  const std::string path_;
  const Parser parse_;
  const Clock& clock_;
  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  mutable absl::Time last_check_ ABSL_GUARDED_BY(mu_);
  // The stamp of the file last read, good or bad: a bad file is logged once.
  mutable FileStamp seen_ ABSL_GUARDED_BY(mu_);
  mutable bool missing_ ABSL_GUARDED_BY(mu_) = false;
  mutable std::shared_ptr<const T> value_ ABSL_GUARDED_BY(mu_);
};

}  // namespace conveyor::orchestrator::auth

#endif  // CONVEYOR_ORCHESTRATOR_AUTH_RELOADING_FILE_H_
