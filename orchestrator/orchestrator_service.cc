#include "orchestrator/orchestrator_service.h"

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "orchestrator/scheduler.h"
#include "common/grpc_status.h"
#include "common/log.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;

namespace {

void LogCall(absl::string_view rpc, const std::string& chain, const absl::Status& status,
             absl::Time start) {
  LogLine line(status.ok() ? LogLevel::kInfo : LogLevel::kWarning);
  line.Add("rpc", rpc);
  if (!chain.empty()) line.Add("chain", chain);
  line.Add("code", absl::StatusCodeToString(status.code()))
      .Add("ms", absl::ToDoubleMilliseconds(absl::Now() - start));
  if (!status.ok()) line.Add("error", status.message());
}

// Runs `work` (returning absl::StatusOr<Response>) on the pool, then finishes.
template <typename Response, typename Work>
grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx, Response* response,
                                WorkerPool& pool, absl::string_view rpc, std::string chain,
                                Work work) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const absl::Time start = absl::Now();
  bool accepted = pool.TrySubmit([ctx, response, reactor, rpc, chain, start,
                                  work = std::move(work)]() mutable {
    absl::Status status;
    if (ctx->IsCancelled()) {
      status = absl::CancelledError("call cancelled before work started");
    } else {
      auto result = work();
      status = result.status();
      if (result.ok()) *response = *std::move(result);
    }
    LogCall(rpc, chain, status, start);
    reactor->Finish(ToGrpcStatus(status));
  });
  if (!accepted) {
    absl::Status busy = absl::ResourceExhaustedError(
        "orchestrator is at its concurrency limit (--worker-threads + --max-queued); retry later");
    LogCall(rpc, chain, busy, start);
    reactor->Finish(ToGrpcStatus(busy));
  }
  return reactor;
}

bool IsTerminalEvent(ChainEvent::Type type) {
  return type == ChainEvent::CHAIN_SUCCEEDED || type == ChainEvent::CHAIN_FAILED ||
         type == ChainEvent::CHAIN_CANCELLED;
}

class FinishedWriter : public grpc::ServerWriteReactor<ChainEvent> {
 public:
  explicit FinishedWriter(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

// One WatchChain: history, then live events, until a terminal event.
class WatchReactor : public grpc::ServerWriteReactor<ChainEvent> {
 public:
  WatchReactor(ChainStore& store, std::string id, std::string after, std::atomic<int>& active)
      : store_(store), id_(std::move(id)), last_id_(after.empty() ? "0" : std::move(after)),
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
  void Run() {
    absl::StatusOr<StoredChain> chain = store_.Load(id_);
    if (!chain.ok()) {
      Finish(ToGrpcStatus(ChainApi::PublicStoreError(chain.status())));
      return;
    }
    while (!Cancelled()) {
      absl::StatusOr<EventBatch> batch = store_.Events(id_, last_id_, 100, absl::Seconds(1));
      if (!batch.ok()) {
        Finish(ToGrpcStatus(ChainApi::PublicStoreError(batch.status())));
        return;
      }
      for (ChainEvent& e : batch->events) {
        last_id_ = e.event_id();
        current_ = std::move(e);
        {
          absl::MutexLock lock(&mu_);
          if (cancelled_) break;
          writing_ = true;
        }
        StartWrite(&current_);
        absl::MutexLock lock(&mu_);
        auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !writing_ || cancelled_; };
        mu_.Await(absl::Condition(&done));
        if (cancelled_) break;
      }
      if (Cancelled()) break;
      if (batch->events.empty()) {
        // Nothing new: a chain that already ended (e.g. watched after its last
        // event) will not produce more, so end the stream.
        absl::StatusOr<StoredChain> now = store_.Load(id_);
        if (!now.ok()) {
          Finish(ToGrpcStatus(ChainApi::PublicStoreError(now.status())));
          return;
        }
        if (IsTerminal(now->chain.state())) {
          Finish(grpc::Status::OK);
          return;
        }
        continue;
      }
      if (IsTerminalEvent(current_.type())) {
        // Only the last event of the batch decides: a resumed chain goes on.
        Finish(grpc::Status::OK);
        return;
      }
    }
    // Wait for an outstanding write before finishing.
    {
      absl::MutexLock lock(&mu_);
      auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !writing_; };
      mu_.AwaitWithTimeout(absl::Condition(&idle), absl::Seconds(5));
    }
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
  }

  ChainStore& store_;
  const std::string id_;
  std::string last_id_;
  std::atomic<int>& active_;
  ChainEvent current_;
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

class StreamSubmitReactor : public grpc::ServerReadReactor<conveyor::v1::SubmitChainChunk> {
 public:
  StreamSubmitReactor(ChainApi& api, WorkerPool& pool, Chain* response, int64_t max_bytes)
      : api_(api), pool_(pool), response_(response), max_bytes_(max_bytes) {
    StartRead(&chunk_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Submit();
      return;
    }
    if (first_) {
      first_ = false;
      if (!chunk_.has_request()) {
        Fail(absl::InvalidArgumentError("the first message must carry `request`"));
        return;
      }
      request_ = std::move(*chunk_.mutable_request());
    } else if (chunk_.has_request()) {
      Fail(absl::InvalidArgumentError("only the first message may carry `request`"));
      return;
    } else {
      if (static_cast<int64_t>(request_.source().data().size() + chunk_.source_data().size()) >
          max_bytes_) {
        Fail(absl::InvalidArgumentError(absl::StrCat(
            "source.data: the streamed source is over --max-intermediate-bytes ", max_bytes_)));
        return;
      }
      request_.mutable_source()->mutable_data()->append(chunk_.source_data());
    }
    StartRead(&chunk_);
  }
  void OnDone() override { delete this; }

 private:
  void Fail(const absl::Status& status) {
    LogCall("conveyor.v1.Orchestrator/StreamSubmitChain", "", status, start_);
    Finish(ToGrpcStatus(status));
  }
  void Submit() {
    bool accepted = pool_.TrySubmit([this] {
      absl::StatusOr<Chain> chain = api_.Submit(request_);
      if (chain.ok()) *response_ = *std::move(chain);
      LogCall("conveyor.v1.Orchestrator/StreamSubmitChain", chain.ok() ? response_->name() : "",
              chain.status(), start_);
      Finish(ToGrpcStatus(chain.status()));
    });
    if (!accepted) Fail(absl::ResourceExhaustedError("orchestrator is at its concurrency limit"));
  }

  ChainApi& api_;
  WorkerPool& pool_;
  Chain* response_;
  const int64_t max_bytes_;
  const absl::Time start_ = absl::Now();
  bool first_ = true;
  conveyor::v1::SubmitChainChunk chunk_;
  conveyor::v1::SubmitChainRequest request_;
};

}  // namespace

grpc::ServerUnaryReactor* OrchestratorService::SubmitChain(
    grpc::CallbackServerContext* ctx, const conveyor::v1::SubmitChainRequest* request,
    Chain* response) {
  return Serve(ctx, response, pool_, "conveyor.v1.Orchestrator/SubmitChain", "",
               [this, request] { return api_.Submit(*request); });
}

grpc::ServerReadReactor<conveyor::v1::SubmitChainChunk>* OrchestratorService::StreamSubmitChain(
    grpc::CallbackServerContext* /*ctx*/, Chain* response) {
  return new StreamSubmitReactor(api_, pool_, response, options_.max_source_bytes);
}

grpc::ServerUnaryReactor* OrchestratorService::GetChain(
    grpc::CallbackServerContext* ctx, const conveyor::v1::GetChainRequest* request,
    Chain* response) {
  return Serve(ctx, response, pool_, "conveyor.v1.Orchestrator/GetChain", request->name(),
               [this, request] { return api_.Get(request->name()); });
}

grpc::ServerUnaryReactor* OrchestratorService::ListChains(
    grpc::CallbackServerContext* ctx, const conveyor::v1::ListChainsRequest* request,
    conveyor::v1::ListChainsResponse* response) {
  return Serve(ctx, response, pool_, "conveyor.v1.Orchestrator/ListChains", "",
               [this, request] { return api_.List(*request); });
}

grpc::ServerWriteReactor<ChainEvent>* OrchestratorService::WatchChain(
    grpc::CallbackServerContext* /*ctx*/, const conveyor::v1::WatchChainRequest* request) {
  absl::StatusOr<std::string> id = ChainApi::ParseWatchRequest(*request);
  if (!id.ok()) return new FinishedWriter(id.status());
  if (++active_watches_ > options_.max_watches) {
    --active_watches_;
    return new FinishedWriter(absl::ResourceExhaustedError(
        absl::StrCat("too many concurrent watches (", options_.max_watches, ")")));
  }
  return new WatchReactor(store_, *id, request->after_event_id(), active_watches_);
}

grpc::ServerUnaryReactor* OrchestratorService::CancelChain(
    grpc::CallbackServerContext* ctx, const conveyor::v1::CancelChainRequest* request,
    Chain* response) {
  return Serve(ctx, response, pool_, "conveyor.v1.Orchestrator/CancelChain", request->name(),
               [this, request] { return api_.Cancel(request->name()); });
}

grpc::ServerUnaryReactor* OrchestratorService::RetryChain(
    grpc::CallbackServerContext* ctx, const conveyor::v1::RetryChainRequest* request,
    Chain* response) {
  return Serve(ctx, response, pool_, "conveyor.v1.Orchestrator/RetryChain", request->name(),
               [this, request] { return api_.Retry(request->name()); });
}

grpc::ServerUnaryReactor* OrchestratorService::PurgeChains(
    grpc::CallbackServerContext* ctx, const conveyor::v1::PurgeChainsRequest* request,
    conveyor::v1::PurgeChainsResponse* response) {
  return Serve(ctx, response, pool_, "conveyor.v1.Orchestrator/PurgeChains", "",
               [this, request] { return api_.Purge(*request); });
}

grpc::ServerUnaryReactor* OrchestratorService::GetSystemStatus(
    grpc::CallbackServerContext* ctx, const conveyor::v1::GetSystemStatusRequest* /*request*/,
    conveyor::v1::SystemStatus* response) {
  return Serve(ctx, response, pool_, "conveyor.v1.Orchestrator/GetSystemStatus", "",
               [this] { return api_.SystemStatus(); });
}

grpc::ServerUnaryReactor* OrchestratorService::CancelChains(
    grpc::CallbackServerContext* ctx, const conveyor::v1::CancelChainsRequest* request,
    conveyor::v1::BulkChainsResponse* response) {
  return Serve(ctx, response, pool_, "conveyor.v1.Orchestrator/CancelChains", "",
               [this, request] { return api_.CancelMany(*request); });
}

grpc::ServerUnaryReactor* OrchestratorService::RetryChains(
    grpc::CallbackServerContext* ctx, const conveyor::v1::RetryChainsRequest* request,
    conveyor::v1::BulkChainsResponse* response) {
  return Serve(ctx, response, pool_, "conveyor.v1.Orchestrator/RetryChains", "",
               [this, request] { return api_.RetryMany(*request); });
}

}  // namespace conveyor::orchestrator
