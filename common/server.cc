#include "common/server.h"

#include <errno.h>
#include <grpc/support/log.h>
#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/health_service.h"
#include "common/log.h"
#include "common/port_file.h"

namespace conveyor {
namespace {

sigset_t TerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

LogLevel ParseLogLevel(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "warn" || name == "warning") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

// Hands the names of the services the server registered to `names`: the
// server knows them (reflection lists them the same way), grpc::Service does
// not say its own name.
class ServiceNamesPlugin : public grpc::ServerBuilderPlugin {
 public:
  explicit ServiceNamesPlugin(std::vector<std::string>* names) : names_(names) {}
  std::string name() override { return "conveyor_service_names"; }
  void InitServer(grpc::ServerInitializer* /*si*/) override {}
  void Finish(grpc::ServerInitializer* si) override {
    for (const std::string& service : *si->GetServiceList()) {
      // Health and reflection are not services a client asks health for.
      if (!absl::StartsWith(service, "grpc.")) names_->push_back(service);
    }
  }
  void ChangeArguments(const std::string& /*name*/, void* /*value*/) override {}

 private:
  std::vector<std::string>* names_;
};

class ServiceNamesOption : public grpc::ServerBuilderOption {
 public:
  explicit ServiceNamesOption(std::vector<std::string>* names) : names_(names) {}
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<ServiceNamesPlugin>(names_));
  }

 private:
  std::vector<std::string>* names_;
};

// Takes gRPC's reflection plugin out of one server's builder. Linking
// grpc++_reflection registers the plugin for every server by a static
// initializer, so not calling InitProtoReflectionServerBuilderPlugin() does
// not turn it off; removing it here does.
class NoReflectionOption : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
                                    return plugin->name() == "proto_server_reflection";
                                  }),
                   plugins->end());
  }
};

// gRPC reports a failed bind only through its own log, as a multi-line error
// tree. While the server starts, its error lines are collected here instead,
// so a clash becomes one line of ours (and the tree appears at debug level).
// Outside start-up it forwards every line to stderr as gRPC's own would (it
// stays installed: gRPC offers no public way back to its default writer).
absl::Mutex g_capture_mu;
std::string* g_captured ABSL_GUARDED_BY(g_capture_mu) = nullptr;

void CaptureGrpcLog(gpr_log_func_args* args) {
  absl::MutexLock lock(&g_capture_mu);
  if (g_captured != nullptr && args->severity == GPR_LOG_SEVERITY_ERROR) {
    absl::StrAppend(g_captured, args->message, "\n");
    return;
  }
  std::fprintf(stderr, "%s %s:%d] %s\n", gpr_log_severity_string(args->severity), args->file,
               args->line, args->message);
}

// The reason in gRPC's bind error, in words a user acts on.
std::string ListenFailureReason(const std::string& grpc_errors) {
  struct Known {
    int err;
    const char* words;
  };
  for (const Known& known : {Known{EADDRINUSE, "address already in use"},
                             Known{EADDRNOTAVAIL, "address not available on this host"},
                             Known{EACCES, "permission denied"}}) {
    if (absl::StrContains(grpc_errors, std::strerror(known.err))) return known.words;
  }
  if (absl::StrContains(grpc_errors, "Name or service not known") ||
      absl::StrContains(grpc_errors, "DNS resolution failed")) {
    return "host name not resolved";
  }
  return "gRPC could not bind it (--log-level debug shows why)";
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t signals = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

int RunServer(const ServerOptions& options, const std::vector<grpc::Service*>& services,
              const ServerHooks& hooks) {
  SetMinLogLevel(ParseLogLevel(options.log_level));
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options.tls);
  if (!credentials.ok()) {
    std::fprintf(stderr, "%s: %s\n", program_invocation_short_name,
                 std::string(credentials.status().message()).c_str());
    return 2;
  }

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(options.listen, *credentials, &bound_port);
  // gRPC sets SO_REUSEPORT on Linux by default: a second server on a taken
  // port then binds "successfully" and the kernel splits connections between
  // two different services. Off, a clash fails the start instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Our health service replaces gRPC's default one (see health_service.h);
  // the server owns it, `health` stays valid while the server exists.
  auto owned_health = std::make_unique<HealthService>();
  HealthService* health = owned_health.get();
  builder.RegisterService(health);
  builder.SetOption(
      std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(std::move(owned_health)));
  std::vector<std::string> service_names;
  builder.SetOption(std::make_unique<ServiceNamesOption>(&service_names));
  if (!options.reflection) builder.SetOption(std::make_unique<NoReflectionOption>());
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  if (options.max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_MS,
        static_cast<int>(absl::ToInt64Milliseconds(options.max_connection_age)));
    // Calls in flight when the age is reached get this long to finish.
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               static_cast<int>(absl::ToInt64Milliseconds(options.shutdown_grace)));
  }
  for (grpc::Service* service : services) builder.RegisterService(service);

  std::string grpc_errors;
  {
    absl::MutexLock lock(&g_capture_mu);
    g_captured = &grpc_errors;
  }
  gpr_set_log_function(CaptureGrpcLog);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  {
    absl::MutexLock lock(&g_capture_mu);
    g_captured = nullptr;
  }
  if (server == nullptr || bound_port == 0) {
    // `health` went with the builder's failed server.
    if (!grpc_errors.empty()) LogLine(LogLevel::kDebug).Add("grpc_error", grpc_errors);
    std::fprintf(stderr, "%s: cannot listen on %s: %s\n", program_invocation_short_name,
                 options.listen.c_str(), ListenFailureReason(grpc_errors).c_str());
    return 1;
  }
  if (!grpc_errors.empty()) LogLine(LogLevel::kWarning).Add("grpc_error", grpc_errors);
  for (const std::string& name : service_names) health->AddService(name);
  health->SetServingStatus(true);
  if (absl::Status written = options.port_file.empty()
                                 ? absl::OkStatus()
                                 : WritePortFile(options.port_file, bound_port);
      !written.ok()) {
    std::fprintf(stderr, "%s: cannot write --port-file %s: %s\n", program_invocation_short_name,
                 options.port_file.c_str(), std::string(written.message()).c_str());
    server->Shutdown(std::chrono::system_clock::now());
    return 1;
  }
  // Once listening: a server that fails to bind says only that.
  if (!ServerUsesTls(options.tls)) {
    LogLine(LogLevel::kWarning)
        .Add("msg",
             "--insecure: serving plaintext gRPC without TLS; anyone who can reach the "
             "port can call it and read the traffic");
  }
  LogLine(LogLevel::kInfo)
      .Add("msg", "serving")
      .Add("listen", options.listen)
      .Add("port", bound_port)
      .Add("tls", !ServerUsesTls(options.tls)          ? "off"
                  : options.tls.client_ca_file.empty() ? "tls"
                                                       : "mtls");
  if (hooks.on_started) hooks.on_started(*server);

  sigset_t signals = TerminationSignals();
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  LogLine(LogLevel::kInfo).Add("msg", "draining").Add("signal", signal_number);

  // Fail readiness first so load balancers stop sending, then drain.
  // Shutdown(), not SetServingStatus(false): nothing (the orchestrator's
  // Redis-following thread) may flip it back to SERVING while draining.
  health->Shutdown();
  if (hooks.on_draining) hooks.on_draining();
  if (options.drain_delay > absl::ZeroDuration()) {
    const timespec wait = absl::ToTimespec(options.drain_delay);
    if (sigtimedwait(&signals, nullptr, &wait) > 0) {
      LogLine(LogLevel::kInfo).Add("msg", "second signal: drain delay cut short");
    }
  }
  server->Shutdown(std::chrono::system_clock::now() +
                   absl::ToChronoMilliseconds(options.shutdown_grace));
  server->Wait();
  LogLine(LogLevel::kInfo).Add("msg", "stopped");
  return 0;
}

}  // namespace conveyor
