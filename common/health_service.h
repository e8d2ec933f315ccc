// grpc.health.v1.Health served with our own generated code (Debian's
// grpc-proto health.proto, compiled into conveyor_proto), in place of gRPC
// C++'s default health service. The default one answers correctly but never
// links health.proto's descriptor into the generated pool that server
// reflection serves (grpc/grpc issue 36665), so grpcurl's `describe
// grpc.health.v1.Health` and `grpc.health.v1.Health/Check` failed with
// "Symbol not found". Serving it with generated code puts it there.
//
// It is also the server's HealthCheckServiceInterface (installed with
// HealthCheckServiceServerBuilderOption), so Server::GetHealthCheckService()
// and its SetServingStatus keep working for callers such as the orchestrator.
//
// Status per service name: "" (the whole server) plus one entry per service
// the server registers ("conveyor.v1.ResizeStage", ...), added by
// AddService(). Check on a name never added answers NOT_FOUND, which is how a
// client tells "this server is not the one I wanted" (the orchestrator's
// WRONG_SERVICE). Watch streams the current status, then every change.
//
// Thread-safe. Shutdown() sets everything NOT_SERVING, ends every Watch
// stream after writing that, and ignores later changes (a background thread
// can no longer flip a draining server back to SERVING).
#ifndef CONVEYOR_COMMON_HEALTH_SERVICE_H_
#define CONVEYOR_COMMON_HEALTH_SERVICE_H_

#include <grpcpp/health_check_service_interface.h>

#include <map>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace conveyor {

class HealthService : public grpc::health::v1::Health::CallbackService,
                      public grpc::HealthCheckServiceInterface {
 public:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;
  class WatchReactor;

  // "" starts NOT_SERVING until SetServingStatus(true).
  HealthService();
  ~HealthService() override;

  // Makes `service_name` known (NOT_SERVING until set), so Check on it
  // answers instead of NOT_FOUND. Ignored after Shutdown().
  void AddService(const std::string& service_name);

  // HealthCheckServiceInterface. SetServingStatus(name, ...) adds the name
  // if it is new; SetServingStatus(bool) applies to every known name.
  void SetServingStatus(const std::string& service_name, bool serving) override;
  void SetServingStatus(bool serving) override;
  void Shutdown() override;

  // grpc.health.v1.Health.
  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  void SetLocked(const std::string& service_name, ServingStatus status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveWatcher(WatchReactor* watcher);

  absl::Mutex mu_;
  std::map<std::string, ServingStatus> statuses_ ABSL_GUARDED_BY(mu_);
  std::multimap<std::string, WatchReactor*> watchers_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_HEALTH_SERVICE_H_
