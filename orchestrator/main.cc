// conveyor-orchestrator: flags -> construct -> serve.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/server.h"
#include "common/server_flags.h"
#include "common/stage_registry.h"
#include "common/tls_credentials.h"
#include "common/worker_pool.h"
#include "orchestrator/auth/authenticator.h"
#include "orchestrator/auth/scope_check.h"
#include "orchestrator/blob_sweeper.h"
#include "orchestrator/chain_api.h"
#include "orchestrator/dashboard/dashboard_server.h"
#include "orchestrator/dispatcher.h"
#include "orchestrator/grpc_stage_client.h"
#include "orchestrator/orchestrator_service.h"
#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/redis/redis_credentials.h"
#include "orchestrator/redis_cancel_feed.h"
#include "orchestrator/redis_chain_store.h"
#include "orchestrator/scheduler.h"

namespace {

std::string DefaultReplicaName() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] ? host : "orchestrator", "-", getpid());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace conveyor;
  using namespace conveyor::orchestrator;
  BlockTerminationSignals();

  CLI::App app{
      "conveyor-orchestrator: the Orchestrator gRPC service. Stores every chain in Redis and "
      "drives it through the stage workers; run any number of replicas against one Redis."};
  ServerOptions server;
  server.listen = "127.0.0.1:50051";
  server.worker_threads = 8;
  server.max_queued = 256;
  AddServerFlags(app, server);

  std::string redis_url = "redis://127.0.0.1:6379";
  AddEnvOption(app, "--redis-url", redis_url,
               "Redis holding all state: redis://host:port[/db], or a Sentinel-managed "
               "primary: redis-sentinel://host:port,host:port/master[/db] "
               "(docs/orchestrator.md); a password here works but shows in argv, prefer "
               "--redis-password-file")
      ->capture_default_str();
  RedisCredentialFlags redis_credentials;
  AddEnvOption(app, "--redis-user", redis_credentials.user,
               "Redis ACL user to AUTH as (with --redis-password-file)");
  AddEnvOption(app, "--redis-password-file", redis_credentials.password_file,
               "file holding the Redis password (read at start, one trailing newline "
               "stripped; docs/security.md, \"Redis credentials\")");
  // --<stage>-target for every stage of the registry, defaulting to the
  // port dev-up gives its worker.
  std::map<v1::StageKind, std::string> targets;
  for (const StageInfo& stage : Stages()) {
    const std::string name(stage.name);
    targets[stage.kind] = absl::StrCat("127.0.0.1:", stage.default_port);
    AddEnvOption(app, absl::StrCat("--", name, "-target"), targets[stage.kind],
                 absl::StrCat("gRPC target of the ", name, " workers, e.g. dns:///conveyor-", name,
                              ":port (round_robin over every address)"))
        ->capture_default_str();
  }
  DispatcherOptions dispatch;
  AddEnvOption(app, "--max-in-flight", dispatch.max_in_flight,
               "per stage, the most calls this replica has in flight")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  AddDurationFlag(app, "--lease-timeout", dispatch.lease_timeout,
                  "a step whose replica stopped heartbeating this long is taken over by another");
  std::string max_outage = "15m";
  AddEnvOption(app, "--max-outage", max_outage,
               "how long a step waits for its stage to serve again before it fails "
               "(UNAVAILABLE): a duration for every stage, and/or stage=duration items, "
               "e.g. 15m,download=1h")
      ->capture_default_str();
  RedisChainStoreOptions store_options;
  AddDurationFlag(app, "--retention", store_options.retention,
                  "how long finished chains (and idempotency keys) are kept");
  AddDurationFlag(app, "--failed-blob-retention", store_options.failed_blob_retention,
                  "how long the images of FAILED/CANCELLED chains are kept for RetryChain "
                  "(the chain record stays for --retention)");
  AddEnvOption(app, "--max-blob-bytes", store_options.max_blob_bytes,
               "SubmitChain answers RESOURCE_EXHAUSTED (BLOB_STORE_FULL) while the images "
               "held for chains reach this many bytes; 0 = no cap")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  AddEnvOption(app, "--tenant-max-chains-in-flight",
               store_options.tenant_quotas.max_chains_in_flight,
               "SubmitChain and RetryChain answer RESOURCE_EXHAUSTED (TENANT_QUOTA_EXCEEDED) "
               "while a tenant has this many chains not yet ended; 0 = no quota")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  AddEnvOption(app, "--tenant-max-stored-bytes", store_options.tenant_quotas.max_stored_bytes,
               "SubmitChain answers RESOURCE_EXHAUSTED (TENANT_QUOTA_EXCEEDED) while the "
               "images held for a tenant's chains reach this many bytes; 0 = no quota")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  AddEnvOption(app, "--max-intermediate-bytes", dispatch.max_intermediate_bytes,
               "largest image kept between steps (and largest inline source)")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 30))
      ->capture_default_str();
  dispatch.replica_name = DefaultReplicaName();
  AddEnvOption(app, "--replica-name", dispatch.replica_name,
               "this replica's consumer name in the dispatch group (unique per replica)")
      ->capture_default_str();
  // The worker channels: TLS with a CA (mTLS with a client certificate),
  // plaintext only with --insecure and no --worker-tls-* flag.
  ChannelTlsOptions worker_tls;
  worker_tls.system_roots_allowed = false;
  AddChannelTlsFlags(app, "worker-", "the workers", worker_tls);
  OrchestratorServiceOptions service_options;
  AddEnvOption(app, "--max-watches", service_options.max_watches,
               "concurrent WatchChain streams; beyond that RESOURCE_EXHAUSTED")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  // Caller identity (docs/security.md, "Caller identity"): at least one
  // source, or the server refuses to start.
  auth::AuthOptions auth_options;
  AddEnvOption(app, "--tokens-file", auth_options.tokens_file,
               "bearer tokens and client certificates of callers: lines \"sha256:<hex> "
               "<principal> <tenant> <scopes>\" or \"cert:<identity> ...\" (reloaded when "
               "it changes)");
  AddEnvOption(app, "--jwt-keys", auth_options.jwt_keys_file,
               "PEM public keys or a JWKS that sign JWT bearer tokens (RS256, ES256; "
               "reloaded when it changes); needs --jwt-issuer and --jwt-audience");
  AddEnvOption(app, "--jwt-issuer", auth_options.jwt_issuer, "the `iss` every JWT must carry");
  AddEnvOption(app, "--jwt-audience", auth_options.jwt_audience,
               "the `aud` every JWT must carry (or list)");
  AddEnvFlag(app, "--allow-anonymous", auth_options.allow_anonymous,
             "admit calls without credentials as principal \"anonymous\" of tenant "
             "\"default\" with --anonymous-scopes (a bad token is still refused)");
  std::string anonymous_scopes = auth::DescribeScopes(auth_options.anonymous_scopes);
  AddEnvOption(app, "--anonymous-scopes", anonymous_scopes,
               "with --allow-anonymous: what anonymous callers may do, comma-separated from "
               "chains.submit, chains.read, chains.cancel, admin")
      ->capture_default_str();
  // The web dashboard (docs/observability.md, "Dashboard"): off by default.
  dashboard::DashboardOptions dashboard_options;
  AddEnvOption(app, "--http-listen", dashboard_options.listen,
               "serve the web dashboard on host:port (HTTPS with --tls-cert/--tls-key; "
               "port 0 picks one, see --http-port-file); empty = off");
  AddEnvOption(app, "--http-port-file", dashboard_options.port_file,
               "write the dashboard's bound port here once listening");
  AddEnvOption(app, "--http-max-streams", dashboard_options.max_streams,
               "live dashboard streams (open pages) at once; beyond that 429")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  if (auto exit_code = conveyor::ParseCommandLine(app, argc, argv)) return *exit_code;

  if (absl::StatusOr<Scopes> scopes = auth::ParseScopeList(anonymous_scopes); scopes.ok()) {
    auth_options.anonymous_scopes = *scopes;
  } else {
    std::fprintf(stderr, "conveyor-orchestrator: --anonymous-scopes: %s\n",
                 std::string(scopes.status().message()).c_str());
    return 2;
  }
  RealClock clock;
  absl::StatusOr<std::unique_ptr<auth::Authenticator>> authenticator =
      auth::Authenticator::Create(auth_options, clock);
  if (!authenticator.ok()) {
    std::fprintf(stderr, "conveyor-orchestrator: %s\n",
                 std::string(authenticator.status().message()).c_str());
    return 2;
  }
  if ((*authenticator)->has_certificate_lines() && server.tls.client_ca_file.empty()) {
    LogLine(LogLevel::kWarning)
        .Add("msg",
             "--tokens-file has cert: lines, but without --tls-client-ca no client "
             "certificate is asked for: they match no caller");
  }
  if (auth_options.allow_anonymous) {
    LogLine(LogLevel::kWarning)
        .Add("msg", "--allow-anonymous: calls without credentials are admitted")
        .Add("scopes", auth::DescribeScopes(auth_options.anonymous_scopes));
  }

  if (dispatch.lease_timeout < absl::Milliseconds(300)) {
    std::fprintf(stderr, "--lease-timeout: want at least 300ms\n");
    return 2;
  }
  SchedulerOptions scheduler_options;
  if (absl::Status s = ParseMaxOutage(max_outage, scheduler_options); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (store_options.retention < absl::Seconds(1)) {
    std::fprintf(stderr, "--retention: want at least 1s\n");
    return 2;
  }
  if (store_options.failed_blob_retention < absl::Seconds(1)) {
    std::fprintf(stderr, "--failed-blob-retention: want at least 1s\n");
    return 2;
  }
  absl::StatusOr<RedisEndpoint> endpoint = ParseRedisUrl(redis_url);
  if (!endpoint.ok()) {
    std::fprintf(stderr, "%s\n", std::string(endpoint.status().message()).c_str());
    return 2;
  }
  if (absl::Status s = ApplyRedisCredentials(redis_credentials, *endpoint); !s.ok()) {
    std::fprintf(stderr, "conveyor-orchestrator: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  worker_tls.insecure = server.tls.insecure;
  worker_tls.reload_interval = server.tls.reload_interval;
  absl::StatusOr<ChannelSecurity> worker_security = MakeChannelSecurity(worker_tls);
  if (!worker_security.ok()) {
    std::fprintf(stderr, "conveyor-orchestrator: worker channels: %s\n",
                 std::string(worker_security.status().message()).c_str());
    return 2;
  }
  if (!worker_security->tls) {
    LogLine(LogLevel::kWarning)
        .Add("msg", "--insecure: calling the stage workers over plaintext gRPC without TLS");
  }
  dispatch.address = server.listen;
  service_options.max_source_bytes = dispatch.max_intermediate_bytes;

  RedisConnectionPool redis(*endpoint, absl::Seconds(1), absl::Seconds(5), 64);
  RedisChainStore store(redis, store_options);
  if (absl::Status s = store.EnsureGroups(); !s.ok()) {
    LogLine(LogLevel::kWarning)
        .Add("msg", "redis not reachable at start; will keep trying")
        .Add("error", s.ToString());
  }
  RealRandomSource random;
  Scheduler scheduler(clock, random, scheduler_options);
  StageTargets stage_targets;
  stage_targets.targets = targets;
  stage_targets.max_message_bytes = server.max_message_bytes;
  stage_targets.credentials = worker_security->credentials;
  stage_targets.server_name = worker_security->server_name;
  GrpcStageClient stages(stage_targets);
  ChainApiOptions api_options;
  api_options.max_intermediate_bytes = dispatch.max_intermediate_bytes;
  api_options.lease_timeout = dispatch.lease_timeout;
  api_options.max_in_flight = dispatch.max_in_flight;
  // 4 MiB: gRPC's default receive limit, which `conveyor list` keeps.
  api_options.max_list_response_bytes =
      std::min<int64_t>(server.max_message_bytes, int64_t{4} << 20) * 15 / 16;
  api_options.max_blob_bytes = store_options.max_blob_bytes;
  api_options.failed_blob_retention =
      std::min(store_options.failed_blob_retention, store_options.retention);
  ChainApi api(store, scheduler, stages, clock, api_options);
  WorkerPool pool(static_cast<size_t>(server.worker_threads),
                  static_cast<size_t>(server.max_queued));
  OrchestratorService service(api, store, pool, **authenticator, service_options);
  RedisCancelFeed cancels(redis);
  Dispatcher dispatcher(store, cancels, stages, scheduler, clock, dispatch);
  BlobSweeper blob_sweeper(store, clock,
                           BlobSweeper::IntervalFor(store_options.failed_blob_retention));

  std::unique_ptr<dashboard::DashboardServer> dashboard_server;
  if (!dashboard_options.listen.empty()) {
    dashboard_options.tls_cert_file = server.tls.cert_file;
    dashboard_options.tls_key_file = server.tls.key_file;
    dashboard_server = std::make_unique<dashboard::DashboardServer>(api, store, **authenticator,
                                                                    clock, dashboard_options);
    if (absl::Status s = dashboard_server->Start(); !s.ok()) {
      std::fprintf(stderr, "conveyor-orchestrator: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    LogLine(LogLevel::kInfo).Add("msg", "dashboard serving").Add("url", dashboard_server->url());
  }

  // Health follows Redis: NOT_SERVING while it cannot be reached.
  absl::Notification stop_health;
  std::thread health_thread;
  ServerHooks hooks;
  hooks.on_started = [&](grpc::Server& srv) {
    dispatcher.Start();
    blob_sweeper.Start();
    health_thread = std::thread([&, health = srv.GetHealthCheckService()] {
      bool serving = true;
      do {
        bool ok = store.Ping().ok();
        if (ok != serving) {
          LogLine(ok ? LogLevel::kInfo : LogLevel::kWarning)
              .Add("msg", ok ? "redis reachable: SERVING" : "redis unreachable: NOT_SERVING");
          health->SetServingStatus(ok);
          serving = ok;
        }
      } while (!stop_health.WaitForNotificationWithTimeout(absl::Milliseconds(500)));
    });
  };
  hooks.on_draining = [&] {
    stop_health.Notify();
    if (health_thread.joinable()) health_thread.join();
    dispatcher.Stop(server.shutdown_grace / 2);
    blob_sweeper.Stop();
    if (dashboard_server != nullptr) dashboard_server->Stop();
  };
  LogLine(LogLevel::kInfo)
      .Add("msg", "orchestrator starting")
      .Add("replica", dispatch.replica_name)
      .Add("redis", endpoint->Describe())
      .Add("auth", (*authenticator)->Describe());
  int code = RunServer(server, {&service}, hooks);
  if (!stop_health.HasBeenNotified()) stop_health.Notify();
  if (health_thread.joinable()) health_thread.join();
  dispatcher.Stop(absl::ZeroDuration());
  dashboard_server.reset();
  pool.Shutdown();
  return code;
}
