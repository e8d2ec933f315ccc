#include "orchestrator/orchestrator_service.h"

#include <grpc/grpc_security_constants.h>

#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "orchestrator/auth/scope_check.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;

namespace {

constexpr absl::string_view kStreamSubmitRpc = "conveyor.v1.Orchestrator/StreamSubmitChain";

// What a full pool answers; no WORKER_BUSY reason: that one tells the
// orchestrator about its stage workers.
absl::Status OrchestratorBusyError() {
  return absl::ResourceExhaustedError(
      "orchestrator is at its concurrency limit (--worker-threads + --max-queued); retry later");
}

// Runs `call(caller, request) -> absl::StatusOr<Response>` (a ChainApi
// method) as the unary call's work, for the caller `identify` establishes.
template <typename Request, typename Response, typename Identify, typename Call>
grpc::ServerUnaryReactor* Answer(const UnaryRunner& runner, grpc::CallbackServerContext* ctx,
                                 const Request* request, Response* response, absl::string_view rpc,
                                 Identify identify, Call call) {
  return runner.Run(ctx, request, response, rpc,
                    [ctx, identify = std::move(identify), call = std::move(call)](
                        const Request& req, Response& resp, CallScope& scope) {
                      absl::StatusOr<Caller> caller = identify(*ctx, scope);
                      if (!caller.ok()) return caller.status();
                      return FillResponse(call(*caller, req), resp);
                    });
}

// StreamSubmitChain: the request first, then source bytes, bounded by
// max_bytes; submitted on the pool once the client half-closes.
class StreamSubmitReactor : public grpc::ServerReadReactor<conveyor::v1::SubmitChainChunk> {
 public:
  // Finishes at once with the caller's error if it could not be identified.
  // `scope` carries the caller's log fields.
  StreamSubmitReactor(ChainApi& api, WorkerPool& pool, absl::StatusOr<Caller> caller,
                      CallScope scope, Chain* response, int64_t max_bytes)
      : api_(api),
        pool_(pool),
        caller_(caller.ok() ? *std::move(caller) : Caller{}),
        scope_(std::move(scope)),
        response_(response),
        max_bytes_(max_bytes) {
    if (!caller.ok()) {
      Fail(caller.status());
      return;
    }
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
  void Finished(const absl::Status& status, CallSubject subject) {
    LogCall(kStreamSubmitRpc, subject, status, absl::Now() - start_, request_.ByteSizeLong(),
            status.ok() ? response_->ByteSizeLong() : 0, scope_);
    Finish(ToGrpcStatus(status));
  }
  void Fail(const absl::Status& status) { Finished(status, CallSubject{}); }
  void Submit() {
    bool accepted = pool_.TrySubmit([this] {
      const absl::Status status = FillResponse(api_.Submit(caller_, request_), *response_);
      Finished(status, CallSubject{status.ok() ? response_->name() : ""});
    });
    if (!accepted) Fail(OrchestratorBusyError());
  }

  ChainApi& api_;
  WorkerPool& pool_;
  const Caller caller_;
  const CallScope scope_;
  Chain* response_;
  const int64_t max_bytes_;
  const absl::Time start_ = absl::Now();
  bool first_ = true;
  conveyor::v1::SubmitChainChunk chunk_;
  conveyor::v1::SubmitChainRequest request_;
};

// The names of the verified client certificate, SAN DNS and URI names
// first (what a deployment names its clients by), then the CN; none
// without mTLS (the handshake verified the certificate against
// --tls-client-ca, so these are the CA's word).
std::vector<std::string> PeerIdentities(const grpc::CallbackServerContext& ctx) {
  std::vector<std::string> names;
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return names;
  const auto add = [&names](const grpc::string_ref& value) {
    std::string name(value.data(), value.size());
    if (!name.empty() && !absl::c_linear_search(names, name)) names.push_back(std::move(name));
  };
  for (const char* property :
       {GRPC_PEER_DNS_PROPERTY_NAME, GRPC_PEER_URI_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME}) {
    for (const grpc::string_ref& value : auth->FindPropertyValues(property)) add(value);
  }
  for (const grpc::string_ref& value : auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
    add(value);
  }
  return names;
}

auth::Credentials CredentialsOf(const grpc::CallbackServerContext& ctx) {
  auth::Credentials credentials;
  auto [begin, end] = ctx.client_metadata().equal_range("authorization");
  for (auto it = begin; it != end; ++it) {
    credentials.authorization.emplace_back(it->second.data(), it->second.size());
  }
  credentials.peer_identities = PeerIdentities(ctx);
  return credentials;
}

}  // namespace

absl::StatusOr<Caller> OrchestratorService::Identify(const grpc::CallbackServerContext& ctx,
                                                     Scope needed, CallScope& scope) const {
  absl::StatusOr<Caller> caller = authenticator_.Authenticate(CredentialsOf(ctx));
  if (!caller.ok()) return caller.status();
  // Known from here on, so a refused call's line names who was refused.
  scope.log_fields.emplace_back("principal", caller->principal);
  scope.log_fields.emplace_back("tenant", caller->tenant);
  if (absl::Status allowed = auth::CheckScope(*caller, needed); !allowed.ok()) return allowed;
  return caller;
}

OrchestratorService::OrchestratorService(ChainApi& api, ChainStore& store, WorkerPool& pool,
                                         const auth::Authenticator& authenticator,
                                         OrchestratorServiceOptions options)
    : api_(api),
      authenticator_(authenticator),
      pool_(pool),
      options_(options),
      runner_(pool, OrchestratorBusyError()),
      watcher_(store, options.max_watches) {}

grpc::ServerUnaryReactor* OrchestratorService::SubmitChain(
    grpc::CallbackServerContext* ctx, const conveyor::v1::SubmitChainRequest* request,
    Chain* response) {
  return Answer(runner_, ctx, request, response, "conveyor.v1.Orchestrator/SubmitChain",
                Identifier(Scope::kSubmit),
                [this](const Caller& caller, const auto& req) { return api_.Submit(caller, req); });
}

grpc::ServerReadReactor<conveyor::v1::SubmitChainChunk>* OrchestratorService::StreamSubmitChain(
    grpc::CallbackServerContext* ctx, Chain* response) {
  CallScope scope;
  absl::StatusOr<Caller> caller = Identify(*ctx, Scope::kSubmit, scope);
  return new StreamSubmitReactor(api_, pool_, std::move(caller), std::move(scope), response,
                                 options_.max_source_bytes);
}

grpc::ServerUnaryReactor* OrchestratorService::GetChain(
    grpc::CallbackServerContext* ctx, const conveyor::v1::GetChainRequest* request,
    Chain* response) {
  return Answer(runner_, ctx, request, response, "conveyor.v1.Orchestrator/GetChain",
                Identifier(Scope::kRead),
                [this](const Caller& caller, const auto& req) { return api_.Get(caller, req.name()); });
}

grpc::ServerUnaryReactor* OrchestratorService::ListChains(
    grpc::CallbackServerContext* ctx, const conveyor::v1::ListChainsRequest* request,
    conveyor::v1::ListChainsResponse* response) {
  return Answer(runner_, ctx, request, response, "conveyor.v1.Orchestrator/ListChains",
                Identifier(Scope::kRead),
                [this](const Caller& caller, const auto& req) { return api_.List(caller, req); });
}

grpc::ServerWriteReactor<conveyor::v1::ChainEvent>* OrchestratorService::WatchChain(
    grpc::CallbackServerContext* ctx, const conveyor::v1::WatchChainRequest* request) {
  CallScope scope;  // WatchChain writes no per-call line
  return watcher_.Start(Identify(*ctx, Scope::kRead, scope), *request);
}

grpc::ServerUnaryReactor* OrchestratorService::CancelChain(
    grpc::CallbackServerContext* ctx, const conveyor::v1::CancelChainRequest* request,
    Chain* response) {
  return Answer(runner_, ctx, request, response, "conveyor.v1.Orchestrator/CancelChain",
                Identifier(Scope::kCancel),
                [this](const Caller& caller, const auto& req) { return api_.Cancel(caller, req.name()); });
}

grpc::ServerUnaryReactor* OrchestratorService::RetryChain(
    grpc::CallbackServerContext* ctx, const conveyor::v1::RetryChainRequest* request,
    Chain* response) {
  return Answer(runner_, ctx, request, response, "conveyor.v1.Orchestrator/RetryChain",
                Identifier(Scope::kCancel),
                [this](const Caller& caller, const auto& req) { return api_.Retry(caller, req.name()); });
}

grpc::ServerUnaryReactor* OrchestratorService::PurgeChains(
    grpc::CallbackServerContext* ctx, const conveyor::v1::PurgeChainsRequest* request,
    conveyor::v1::PurgeChainsResponse* response) {
  return Answer(runner_, ctx, request, response, "conveyor.v1.Orchestrator/PurgeChains",
                Identifier(Scope::kAdmin),
                [this](const Caller& caller, const auto& req) { return api_.Purge(caller, req); });
}

grpc::ServerUnaryReactor* OrchestratorService::GetSystemStatus(
    grpc::CallbackServerContext* ctx, const conveyor::v1::GetSystemStatusRequest* request,
    conveyor::v1::SystemStatus* response) {
  return Answer(runner_, ctx, request, response, "conveyor.v1.Orchestrator/GetSystemStatus",
                Identifier(Scope::kRead),
                [this](const Caller& caller, const auto& /*req*/) { return api_.SystemStatus(caller); });
}

grpc::ServerUnaryReactor* OrchestratorService::CancelChains(
    grpc::CallbackServerContext* ctx, const conveyor::v1::CancelChainsRequest* request,
    conveyor::v1::BulkChainsResponse* response) {
  return Answer(runner_, ctx, request, response, "conveyor.v1.Orchestrator/CancelChains",
                Identifier(Scope::kCancel),
                [this](const Caller& caller, const auto& req) { return api_.CancelMany(caller, req); });
}

grpc::ServerUnaryReactor* OrchestratorService::RetryChains(
    grpc::CallbackServerContext* ctx, const conveyor::v1::RetryChainsRequest* request,
    conveyor::v1::BulkChainsResponse* response) {
  return Answer(runner_, ctx, request, response, "conveyor.v1.Orchestrator/RetryChains",
                Identifier(Scope::kCancel),
                [this](const Caller& caller, const auto& req) { return api_.RetryMany(caller, req); });
}

}  // namespace conveyor::orchestrator
