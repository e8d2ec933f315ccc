#include "orchestrator/grpc_stage_client.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "conveyor/v1/stages.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "common/grpc_status.h"

namespace conveyor::orchestrator {

using conveyor::v1::StageKind;

struct GrpcStageClient::Stubs {
  std::unique_ptr<conveyor::v1::DownloadStage::Stub> download;
  std::unique_ptr<conveyor::v1::ResizeStage::Stub> resize;
  std::unique_ptr<conveyor::v1::FilterStage::Stub> filter;
  std::unique_ptr<conveyor::v1::UploadStage::Stub> upload;
  std::unique_ptr<conveyor::v1::WebhookStage::Stub> webhook;
};

namespace {

template <typename Request, typename Response>
class CallState : public StageCallHandle {
 public:
  void Cancel() override { context.TryCancel(); }
  grpc::ClientContext context;
  Request request;
  Response response;
  absl::AnyInvocable<void(StageReply) &&> done;
};

// True for a call that no worker of the stage received. UNIMPLEMENTED: the
// target serves another service (our workers implement every method they
// register). UNAVAILABLE from the channel's load balancer or resolver: no
// connection to any worker existed, so the call was never sent. gRPC gives no
// structured signal for that (peer() names the address it tried even when
// the connect was refused), so these are gRPC 1.51's own messages for it;
// tests/integration/outage_test.cc fails if a gRPC upgrade changes them. A
// worker that dies mid-call ends the call with other messages ("Socket
// closed", "Connection reset"): that is an attempt, as the work may have run.
bool NeverReachedAWorker(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) return true;
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  const std::string& message = status.error_message();
  for (const char* marker : {"connections to all backends failing",
                             "failed to connect to all addresses", "DNS resolution failed",
                             "empty address list"}) {
    if (absl::StrContains(message, marker)) return true;
  }
  return false;
}

void ImageOutput(conveyor::v1::Image* image, StageReply& reply) {
  conveyor::v1::ImageInfo* info = reply.output.mutable_image();
  info->set_media_type(image->media_type());
  info->set_width(image->width());
  info->set_height(image->height());
  info->set_size_bytes(static_cast<int64_t>(image->data().size()));
  reply.output_bytes = std::move(*image->mutable_data());
}

template <typename State, typename Fill>
std::function<void(grpc::Status)> Completion(std::shared_ptr<State> state, Fill fill) {
  return [state, fill](grpc::Status status) {
    StageReply reply;
    reply.status = FromGrpcStatus(status);
    reply.worker = state->context.peer();
    reply.not_delivered = NeverReachedAWorker(status);
    if (status.ok()) fill(state->response, reply);
    // Move the callback out before running it: it (indirectly) owns `state`
    // through the dispatcher's in-flight record, and leaving it in place
    // would keep that cycle, and the request's image bytes, alive forever.
    auto done = std::move(state->done);
    state->done = nullptr;
    std::move(done)(std::move(reply));
  };
}

}  // namespace

GrpcStageClient::GrpcStageClient(const StageTargets& targets)
    : targets_(targets), stubs_(std::make_unique<Stubs>()) {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  // Reconnect to a worker that came back within a second: gRPC's default
  // backoff grows to 120 s, which kept waiting steps waiting long after their
  // stage served again.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(static_cast<int>(targets.max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(targets.max_message_bytes));
  for (const auto& [kind, target] : targets.targets) {
    channels_[kind] = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  }
  auto channel = [this](StageKind kind) {
    auto it = channels_.find(kind);
    return it == channels_.end() ? nullptr : it->second;
  };
  if (auto c = channel(conveyor::v1::STAGE_KIND_DOWNLOAD)) {
    stubs_->download = conveyor::v1::DownloadStage::NewStub(c);
  }
  if (auto c = channel(conveyor::v1::STAGE_KIND_RESIZE)) {
    stubs_->resize = conveyor::v1::ResizeStage::NewStub(c);
  }
  if (auto c = channel(conveyor::v1::STAGE_KIND_FILTER)) {
    stubs_->filter = conveyor::v1::FilterStage::NewStub(c);
  }
  if (auto c = channel(conveyor::v1::STAGE_KIND_UPLOAD)) {
    stubs_->upload = conveyor::v1::UploadStage::NewStub(c);
  }
  if (auto c = channel(conveyor::v1::STAGE_KIND_WEBHOOK)) {
    stubs_->webhook = conveyor::v1::WebhookStage::NewStub(c);
  }
}

GrpcStageClient::~GrpcStageClient() = default;

std::string GrpcStageClient::Target(StageKind kind) const {
  auto it = targets_.targets.find(kind);
  return it == targets_.targets.end() ? "" : it->second;
}

std::shared_ptr<StageCallHandle> GrpcStageClient::Start(
    StageCall call, absl::AnyInvocable<void(StageReply) &&> done) {
  auto no_target = [&]() {
    StageReply reply;
    reply.status = absl::FailedPreconditionError(
        absl::StrCat("no target configured for stage kind ", call.kind));
    std::move(done)(std::move(reply));
    return nullptr;
  };
  auto prepare = [&](auto& state) {
    state->done = std::move(done);
    state->context.set_deadline(absl::ToChronoTime(call.deadline));
    *state->request.mutable_context() = call.context;
  };
  switch (call.kind) {
    case conveyor::v1::STAGE_KIND_DOWNLOAD: {
      if (!stubs_->download) return no_target();
      auto s = std::make_shared<CallState<conveyor::v1::DownloadRequest,
                                          conveyor::v1::DownloadResponse>>();
      prepare(s);
      *s->request.mutable_spec() = call.step.download();
      stubs_->download->async()->Download(
          &s->context, &s->request, &s->response,
          Completion(s, [](conveyor::v1::DownloadResponse& r, StageReply& reply) {
            ImageOutput(r.mutable_image(), reply);
          }));
      return s;
    }
    case conveyor::v1::STAGE_KIND_RESIZE: {
      if (!stubs_->resize) return no_target();
      auto s =
          std::make_shared<CallState<conveyor::v1::ResizeRequest, conveyor::v1::ResizeResponse>>();
      prepare(s);
      *s->request.mutable_spec() = call.step.resize();
      *s->request.mutable_image() = std::move(call.input);
      stubs_->resize->async()->Resize(
          &s->context, &s->request, &s->response,
          Completion(s, [](conveyor::v1::ResizeResponse& r, StageReply& reply) {
            ImageOutput(r.mutable_image(), reply);
          }));
      return s;
    }
    case conveyor::v1::STAGE_KIND_FILTER: {
      if (!stubs_->filter) return no_target();
      auto s =
          std::make_shared<CallState<conveyor::v1::FilterRequest, conveyor::v1::FilterResponse>>();
      prepare(s);
      *s->request.mutable_spec() = call.step.filter();
      *s->request.mutable_image() = std::move(call.input);
      stubs_->filter->async()->Filter(
          &s->context, &s->request, &s->response,
          Completion(s, [](conveyor::v1::FilterResponse& r, StageReply& reply) {
            ImageOutput(r.mutable_image(), reply);
          }));
      return s;
    }
    case conveyor::v1::STAGE_KIND_UPLOAD: {
      if (!stubs_->upload) return no_target();
      auto s =
          std::make_shared<CallState<conveyor::v1::UploadRequest, conveyor::v1::UploadResponse>>();
      prepare(s);
      *s->request.mutable_spec() = call.step.upload();
      *s->request.mutable_image() = std::move(call.input);
      stubs_->upload->async()->Upload(
          &s->context, &s->request, &s->response,
          Completion(s, [](conveyor::v1::UploadResponse& r, StageReply& reply) {
            *reply.output.mutable_stored_object() = r.object();
          }));
      return s;
    }
    case conveyor::v1::STAGE_KIND_WEBHOOK: {
      if (!stubs_->webhook) return no_target();
      auto s = std::make_shared<
          CallState<conveyor::v1::WebhookRequest, conveyor::v1::WebhookResponse>>();
      prepare(s);
      *s->request.mutable_spec() = call.step.webhook();
      *s->request.mutable_report() = std::move(call.report);
      stubs_->webhook->async()->Deliver(
          &s->context, &s->request, &s->response,
          Completion(s, [](conveyor::v1::WebhookResponse& r, StageReply& reply) {
            *reply.output.mutable_delivery() = r.delivery();
          }));
      return s;
    }
    default:
      return no_target();
  }
}

std::string GrpcStageClient::HealthServiceName(StageKind kind) {
  switch (kind) {
    case conveyor::v1::STAGE_KIND_DOWNLOAD:
      return conveyor::v1::DownloadStage::service_full_name();
    case conveyor::v1::STAGE_KIND_RESIZE:
      return conveyor::v1::ResizeStage::service_full_name();
    case conveyor::v1::STAGE_KIND_FILTER:
      return conveyor::v1::FilterStage::service_full_name();
    case conveyor::v1::STAGE_KIND_UPLOAD:
      return conveyor::v1::UploadStage::service_full_name();
    case conveyor::v1::STAGE_KIND_WEBHOOK:
      return conveyor::v1::WebhookStage::service_full_name();
    default:
      return "";
  }
}

StageHealth GrpcStageClient::CheckHealth(StageKind kind, absl::Duration timeout) {
  using State = StageHealth::State;
  auto it = channels_.find(kind);
  if (it == channels_.end()) return {State::kUnreachable, "no target configured"};
  // A check asks "does it serve now?": have the channel reconnect at once
  // rather than when its backoff would (a prober checking a stage in an
  // outage then sees the worker's return within a probe period).
  grpc::experimental::ChannelResetConnectionBackoff(it->second.get());
  // A stub is a pointer to the channel and a few method handles: cheap per
  // call, and it leaves the channel (its connection, its backoff) shared
  // with the stage calls, so what this sees is what a call would meet.
  auto stub = grpc::health::v1::Health::NewStub(it->second);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::health::v1::HealthCheckRequest request;
  // By the stage's service name, not "": a worker of another stage (a
  // target typo, a port taken by the wrong process) answers SERVING for ""
  // but NOT_FOUND for this name.
  request.set_service(HealthServiceName(kind));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  auto detail = [&status]() {
    return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                        ": ", status.error_message());
  };
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      break;
    case grpc::StatusCode::NOT_FOUND:
      return {State::kWrongService,
              absl::StrCat("the server at ", Target(kind), " does not serve ", request.service())};
    case grpc::StatusCode::UNIMPLEMENTED:
      return {State::kWrongService,
              absl::StrCat("the server at ", Target(kind), " has no grpc.health.v1 service")};
    default:
      // UNAVAILABLE, DEADLINE_EXCEEDED, and anything else that is not an
      // answer from a health service.
      return {State::kUnreachable, detail()};
  }
  if (response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
    return {State::kServing, ""};
  }
  return {State::kNotServing,
          absl::StrCat("health: ",
                       grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()))};
}

}  // namespace conveyor::orchestrator
