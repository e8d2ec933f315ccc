#include "orchestrator/chain_watch.h"

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "orchestrator/chain_api.h"
#include "orchestrator/scheduler.h"

namespace conveyor::orchestrator {

using conveyor::v1::ChainEvent;

namespace {

// After a cancel, how long the stream waits for a write already started.
constexpr absl::Duration kWriteDrain = absl::Seconds(5);

class FinishedWriter : public grpc::ServerWriteReactor<ChainEvent> {
 public:
  explicit FinishedWriter(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

// One WatchChain stream: FollowChain on its own thread, one write at a time.
class WatchReactor : public grpc::ServerWriteReactor<ChainEvent> {
 public:
  WatchReactor(ChainStore& store, Caller caller, std::string id, std::string after,
               std::atomic<int>& active)
      : store_(store),
        caller_(std::move(caller)),
        id_(std::move(id)),
        after_(std::move(after)),
        active_(active) {
    thread_ = std::thread([this] { Run(); });
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) cancelled_ = true;
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  void OnDone() override {
    thread_.join();
    --active_;
    delete this;
  }

 private:
  bool Cancelled() {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }
  // Writes `event` and waits until the stream took it; false once cancelled.
  bool Write(ChainEvent& event) {
    current_ = std::move(event);
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) return false;
      writing_ = true;
    }
    StartWrite(&current_);
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !writing_ || cancelled_; };
    mu_.Await(absl::Condition(&done));
    return !cancelled_;
  }
  void Run() {
    // Another tenant's chain is NOT_FOUND, as an unknown one.
    absl::Status status = LoadForCaller(store_, caller_, id_).status();
    if (status.ok()) {
      status = FollowChain(
          store_, id_, after_, [this](ChainEvent& event) { return Write(event); },
          [this] { return Cancelled(); });
    }
    if (status.code() == absl::StatusCode::kCancelled) {
      // A write may still be outstanding: finishing now would race it.
      absl::MutexLock lock(&mu_);
      auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !writing_; };
      mu_.AwaitWithTimeout(absl::Condition(&idle), kWriteDrain);
    }
    Finish(ToGrpcStatus(status));
  }

  ChainStore& store_;
  const Caller caller_;
  const std::string id_;
  const std::string after_;
  std::atomic<int>& active_;
  ChainEvent current_;
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace

grpc::ServerWriteReactor<ChainEvent>* ChainWatcher::Start(
    const absl::StatusOr<Caller>& caller, const conveyor::v1::WatchChainRequest& request) {
  if (!caller.ok()) return new FinishedWriter(caller.status());
  absl::StatusOr<std::string> id = ChainApi::ParseWatchRequest(request);
  if (!id.ok()) return new FinishedWriter(id.status());
  if (++active_ > max_watches_) {
    --active_;
    return new FinishedWriter(absl::ResourceExhaustedError(
        absl::StrCat("too many concurrent watches (", max_watches_, ")")));
  }
  return new WatchReactor(store_, *caller, *id, request.after_event_id(), active_);
}

}  // namespace conveyor::orchestrator
