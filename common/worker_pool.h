// A fixed set of threads running queued tasks, with a hard bound on the queue.
//
// gRPC reactors must never block, so blocking work (OpenCV, libcurl, hiredis)
// runs here. When `threads + max_queued` tasks are already accepted, TrySubmit
// refuses at once: the caller answers RESOURCE_EXHAUSTED instead of letting
// requests pile up without bound.
//
// Thread-safe. The destructor (or Shutdown) stops intake, runs every task
// already accepted and joins the threads: accepted work is never dropped.
#ifndef CONVEYOR_COMMON_WORKER_POOL_H_
#define CONVEYOR_COMMON_WORKER_POOL_H_

#include <cstddef>
#include <deque>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace conveyor {

class WorkerPool {
 public:
  using Task = absl::AnyInvocable<void() &&>;

  // `threads` >= 1 run tasks; at most `max_queued` more wait for a thread.
  WorkerPool(size_t threads, size_t max_queued);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Accepts `task` unless the pool is full or shut down; false means refused
  // (and `task` was not run).
  bool TrySubmit(Task task);

  // Tasks accepted and not yet finished (queued plus running).
  size_t InFlight() const;

  // Stops intake, finishes accepted tasks, joins. Idempotent.
  void Shutdown();

 private:
  void RunWorker();

  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  size_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_WORKER_POOL_H_
