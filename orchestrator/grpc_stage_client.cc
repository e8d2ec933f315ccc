#include "orchestrator/grpc_stage_client.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/generic/generic_stub.h>

#include <cstdio>
#include <cstdlib>

#include "common/grpc_status.h"
#include "common/stage_registry.h"
#include "conveyor/v1/stages.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace conveyor::orchestrator {

using conveyor::v1::StageKind;

namespace {

// One call in flight: serialized request and response, and the response
// message it parses into (of the method's declared type).
class CallState : public StageCallHandle {
 public:
  void Cancel() override { context.TryCancel(); }
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  std::unique_ptr<google::protobuf::Message> response_message;
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

absl::StatusOr<StageMethod> FindMethod(const StageInfo& stage) {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(stage.service));
  const google::protobuf::MethodDescriptor* method =
      service == nullptr ? nullptr : service->FindMethodByName(std::string(stage.method));
  if (method == nullptr) {
    return absl::InternalError(absl::StrCat("the registry names ", stage.service, "/",
                                            stage.method, ", which no linked proto defines"));
  }
  auto* factory = google::protobuf::MessageFactory::generated_factory();
  StageMethod m;
  m.path = absl::StrCat("/", stage.service, "/", stage.method);
  m.request = factory->GetPrototype(method->input_type());
  m.response = factory->GetPrototype(method->output_type());
  return m;
}

// Fills a stage request from `call`, each field by its message type: the
// StepContext, the step's spec (the Step arm of the stage), the input Image
// and the ChainReport. The image and report are moved, not copied.
void FillRequest(const StageInfo& stage, StageCall& call, google::protobuf::Message& request) {
  const google::protobuf::Reflection* reflection = request.GetReflection();
  const google::protobuf::Descriptor* type = request.GetDescriptor();
  const google::protobuf::FieldDescriptor* arm =
      conveyor::v1::Step::descriptor()->FindFieldByNumber(stage.step_case);
  const google::protobuf::Message* spec =
      arm == nullptr ? nullptr : &call.step.GetReflection()->GetMessage(call.step, arm);
  for (int i = 0; i < type->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = type->field(i);
    if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE ||
        field->is_repeated()) {
      continue;
    }
    const google::protobuf::Descriptor* field_type = field->message_type();
    google::protobuf::Message* source = nullptr;
    if (field_type == conveyor::v1::StepContext::descriptor()) {
      reflection->MutableMessage(&request, field)->CopyFrom(call.context);
    } else if (spec != nullptr && field_type == spec->GetDescriptor()) {
      reflection->MutableMessage(&request, field)->CopyFrom(*spec);
    } else if (field_type == conveyor::v1::Image::descriptor() && stage.consumes == DataKind::kImage) {
      source = &call.input;
    } else if (field_type == conveyor::v1::ChainReport::descriptor() && stage.reports_outputs) {
      source = &call.report;
    }
    if (source != nullptr) {
      google::protobuf::Message* target = reflection->MutableMessage(&request, field);
      target->GetReflection()->Swap(target, source);
    }
  }
}

// The step's output from a stage response: its Image (whose bytes become
// output_bytes), or the field whose type is one of StepOutput's arms.
void TakeOutput(google::protobuf::Message& response, StageReply& reply) {
  const google::protobuf::Reflection* reflection = response.GetReflection();
  const google::protobuf::Descriptor* type = response.GetDescriptor();
  const google::protobuf::Descriptor* outputs = conveyor::v1::StepOutput::descriptor();
  for (int i = 0; i < type->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = type->field(i);
    if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE ||
        field->is_repeated() || !reflection->HasField(response, field)) {
      continue;
    }
    google::protobuf::Message* value = reflection->MutableMessage(&response, field);
    if (field->message_type() == conveyor::v1::Image::descriptor()) {
      auto* image = static_cast<conveyor::v1::Image*>(value);
      conveyor::v1::ImageInfo* info = reply.output.mutable_image();
      info->set_media_type(image->media_type());
      info->set_width(image->width());
      info->set_height(image->height());
      info->set_size_bytes(static_cast<int64_t>(image->data().size()));
      reply.output_bytes = std::move(*image->mutable_data());
      return;
    }
    for (int k = 0; k < outputs->field_count(); ++k) {
      const google::protobuf::FieldDescriptor* arm = outputs->field(k);
      if (arm->message_type() != field->message_type()) continue;
      google::protobuf::Message* out = reply.output.GetReflection()->MutableMessage(&reply.output, arm);
      out->GetReflection()->Swap(out, value);
      return;
    }
  }
}

void Finish(const std::shared_ptr<CallState>& state, const grpc::Status& status) {
  StageReply reply;
  reply.status = FromGrpcStatus(status);
  reply.worker = state->context.peer();
  reply.not_delivered = NeverReachedAWorker(status);
  if (status.ok()) {
    grpc::Status parsed = grpc::SerializationTraits<google::protobuf::Message>::Deserialize(
        &state->response, state->response_message.get());
    if (parsed.ok()) {
      TakeOutput(*state->response_message, reply);
    } else {
      reply.status = absl::InternalError(
          absl::StrCat("cannot parse the worker's response: ", parsed.error_message()));
    }
  }
  // Move the callback out before running it: it (indirectly) owns `state`
  // through the dispatcher's in-flight record, and leaving it in place
  // would keep that cycle, and the request's image bytes, alive forever.
  auto done = std::move(state->done);
  state->done = nullptr;
  std::move(done)(std::move(reply));
}

}  // namespace

GrpcStageClient::GrpcStageClient(const StageTargets& targets) : targets_(targets) {
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
  if (!targets.server_name.empty()) args.SetSslTargetNameOverride(targets.server_name);
  const std::shared_ptr<grpc::ChannelCredentials> credentials =
      targets.credentials != nullptr ? targets.credentials : grpc::InsecureChannelCredentials();
  for (const auto& [kind, target] : targets.targets) {
    channels_[kind] = grpc::CreateCustomChannel(target, credentials, args);
  }
  for (const StageInfo& stage : Stages()) {
    absl::StatusOr<StageMethod> method = FindMethod(stage);
    if (!method.ok()) {
      std::fprintf(stderr, "%s\n", std::string(method.status().message()).c_str());
      std::abort();
    }
    methods_[stage.kind] = *std::move(method);
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
  const StageInfo* stage = FindStage(call.kind);
  auto channel = channels_.find(call.kind);
  auto method = methods_.find(call.kind);
  if (stage == nullptr || channel == channels_.end() || method == methods_.end()) {
    return no_target();
  }
  auto state = std::make_shared<CallState>();
  state->done = std::move(done);
  state->context.set_deadline(absl::ToChronoTime(call.deadline));
  std::unique_ptr<google::protobuf::Message> request(method->second.request->New());
  FillRequest(*stage, call, *request);
  bool own_buffer = false;
  grpc::Status serialized = grpc::SerializationTraits<google::protobuf::Message>::Serialize(
      *request, &state->request, &own_buffer);
  request.reset();  // the image bytes are in the buffer now
  if (!serialized.ok()) {
    Finish(state, serialized);
    return nullptr;
  }
  state->response_message.reset(method->second.response->New());
  grpc::GenericStub stub(channel->second);
  stub.UnaryCall(&state->context, method->second.path, grpc::StubOptions(), &state->request,
                 &state->response, [state](grpc::Status status) { Finish(state, status); });
  return state;
}

std::string GrpcStageClient::HealthServiceName(StageKind kind) {
  const StageInfo* stage = FindStage(kind);
  return stage == nullptr ? "" : std::string(stage->service);
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
