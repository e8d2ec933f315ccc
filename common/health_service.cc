#include "common/health_service.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace conveyor {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One Watch stream. Holds the latest status not yet written; writes one at a
// time (a stream allows a single outstanding write), so a burst of changes
// collapses to the newest. Its own mutex is never held while calling into
// gRPC, and the service's mutex is held while the service pushes to it: the
// service never reaches a reactor that OnDone already removed.
class HealthService::WatchReactor
    : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  WatchReactor(HealthService* service, std::string service_name)
      : service_(service), service_name_(std::move(service_name)) {}

  const std::string& service_name() const { return service_name_; }

  // Queues `status` to be written; with `last`, ends the stream after it.
  void Push(ServingStatus status, bool last) {
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return;
      latest_ = status;
      has_new_ = true;
      if (last) closing_ = true;
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        stopped_ = true;
        finish_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      }
    }
    Pump();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      stopped_ = true;
      finish_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
    }
    Pump();
  }

  void OnDone() override {
    service_->RemoveWatcher(this);
    delete this;
  }

 private:
  // Starts the next write, or Finish once nothing is left to write and the
  // stream is to end. At most one write in flight; Finish exactly once.
  void Pump() {
    bool write = false;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finish_called_) return;
      if (!stopped_ && has_new_) {
        has_new_ = false;
        writing_ = true;
        response_.set_status(latest_);
        write = true;
      } else if (stopped_ || closing_) {
        finish_called_ = true;
      } else {
        return;
      }
    }
    if (write) {
      StartWrite(&response_);
    } else {
      grpc::Status status;
      {
        absl::MutexLock lock(&mu_);
        status = finish_status_;
      }
      Finish(status);
    }
  }

  HealthService* const service_;
  const std::string service_name_;
  absl::Mutex mu_;
  HealthCheckResponse response_;  // written only while no write is in flight
  ServingStatus latest_ ABSL_GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
  bool has_new_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  // How the stream ends when the server shuts down: clients retry Watch on
  // UNAVAILABLE and find the next replica (or this one, restarted).
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_) =
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down");
};

HealthService::HealthService() {
  absl::MutexLock lock(&mu_);
  statuses_[""] = HealthCheckResponse::NOT_SERVING;
}

HealthService::~HealthService() = default;

void HealthService::AddService(const std::string& service_name) {
  absl::MutexLock lock(&mu_);
  if (shut_down_ || statuses_.count(service_name)) return;
  SetLocked(service_name, HealthCheckResponse::NOT_SERVING);
}

void HealthService::SetServingStatus(const std::string& service_name, bool serving) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  SetLocked(service_name, serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
}

void HealthService::SetServingStatus(bool serving) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  std::vector<std::string> names;
  for (const auto& [name, status] : statuses_) names.push_back(name);
  for (const std::string& name : names) {
    SetLocked(name, serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
  }
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& [name, status] : statuses_) status = HealthCheckResponse::NOT_SERVING;
  for (auto& [name, watcher] : watchers_) {
    auto it = statuses_.find(name);
    watcher->Push(it == statuses_.end() ? HealthCheckResponse::SERVICE_UNKNOWN
                                        : HealthCheckResponse::NOT_SERVING,
                  /*last=*/true);
  }
}

void HealthService::SetLocked(const std::string& service_name, ServingStatus status) {
  auto [it, inserted] = statuses_.try_emplace(service_name, status);
  if (!inserted && it->second == status) return;
  it->second = status;
  auto [begin, end] = watchers_.equal_range(service_name);
  for (auto w = begin; w != end; ++w) w->second->Push(status, /*last=*/false);
}

void HealthService::RemoveWatcher(WatchReactor* watcher) {
  absl::MutexLock lock(&mu_);
  auto [begin, end] = watchers_.equal_range(watcher->service_name());
  for (auto w = begin; w != end; ++w) {
    if (w->second == watcher) {
      watchers_.erase(w);
      return;
    }
  }
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* context,
                                               const HealthCheckRequest* request,
                                               HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::MutexLock lock(&mu_);
  auto it = statuses_.find(request->service());
  if (it == statuses_.end()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 absl::StrCat("service \"", request->service(),
                                              "\" is not served here")));
  } else {
    response->set_status(it->second);
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext* /*context*/, const HealthCheckRequest* request) {
  auto* reactor = new WatchReactor(this, request->service());
  absl::MutexLock lock(&mu_);
  watchers_.emplace(request->service(), reactor);
  auto it = statuses_.find(request->service());
  // The protocol: an unknown name streams SERVICE_UNKNOWN and stays open, in
  // case the service is registered later.
  reactor->Push(it == statuses_.end() ? HealthCheckResponse::SERVICE_UNKNOWN : it->second,
                /*last=*/shut_down_);
  return reactor;
}

}  // namespace conveyor
