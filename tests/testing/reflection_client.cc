#include "tests/testing/reflection_client.h"

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace conveyor::testing {
namespace {

using grpc::reflection::v1alpha::ServerReflection;
using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// One request, one answer, on a stream of its own: the reflection protocol
// allows many per stream, but one keeps a broken connection from poisoning
// later lookups.
absl::StatusOr<ServerReflectionResponse> Ask(const std::shared_ptr<grpc::Channel>& channel,
                                             const ServerReflectionRequest& request,
                                             absl::Duration timeout) {
  auto stub = ServerReflection::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  auto stream = stub->ServerReflectionInfo(&context);
  ServerReflectionResponse response;
  const bool sent = stream->Write(request);
  stream->WritesDone();
  const bool got = sent && stream->Read(&response);
  grpc::Status status = stream->Finish();
  if (!status.ok()) return FromGrpc(status);
  if (!got) return absl::UnavailableError("reflection stream ended without an answer");
  if (response.has_error_response()) {
    return absl::Status(static_cast<absl::StatusCode>(response.error_response().error_code()),
                        response.error_response().error_message());
  }
  return response;
}

}  // namespace

ReflectionDescriptorDatabase::ReflectionDescriptorDatabase(std::shared_ptr<grpc::Channel> channel,
                                                           absl::Duration timeout)
    : channel_(std::move(channel)), timeout_(timeout) {}

ReflectionDescriptorDatabase::~ReflectionDescriptorDatabase() = default;

bool ReflectionDescriptorDatabase::AskForFile(const std::string& what, bool by_symbol,
                                              google::protobuf::FileDescriptorProto* output) {
  ServerReflectionRequest request;
  if (by_symbol) {
    request.set_file_containing_symbol(what);
  } else {
    request.set_file_by_filename(what);
  }
  absl::StatusOr<ServerReflectionResponse> response = Ask(channel_, request, timeout_);
  if (!response.ok()) {
    last_error_ = response.status().ToString();
    return false;
  }
  if (!response->has_file_descriptor_response() ||
      response->file_descriptor_response().file_descriptor_proto_size() == 0) {
    last_error_ = absl::StrCat("no file descriptor for ", what);
    return false;
  }
  // The first file is the one asked for; the server may add dependencies.
  std::string wanted;
  for (const std::string& bytes : response->file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    if (!file.ParseFromString(bytes)) {
      last_error_ = "unparsable file descriptor from the server";
      return false;
    }
    if (wanted.empty()) wanted = file.name();
    if (cached_files_.insert(file.name()).second) cache_.Add(file);
  }
  return cache_.FindFileByName(wanted, output);
}

bool ReflectionDescriptorDatabase::FindFileByName(const std::string& filename,
                                                  google::protobuf::FileDescriptorProto* output) {
  if (cache_.FindFileByName(filename, output)) return true;
  return AskForFile(filename, /*by_symbol=*/false, output);
}

bool ReflectionDescriptorDatabase::FindFileContainingSymbol(
    const std::string& symbol_name, google::protobuf::FileDescriptorProto* output) {
  if (cache_.FindFileContainingSymbol(symbol_name, output)) return true;
  return AskForFile(symbol_name, /*by_symbol=*/true, output);
}

bool ReflectionDescriptorDatabase::FindFileContainingExtension(
    const std::string& /*containing_type*/, int /*field_number*/,
    google::protobuf::FileDescriptorProto* /*output*/) {
  // Extensions play no part in our APIs (proto3).
  return false;
}

absl::StatusOr<std::vector<std::string>> ReflectionDescriptorDatabase::ListServices() {
  ServerReflectionRequest request;
  request.set_list_services("");
  absl::StatusOr<ServerReflectionResponse> response = Ask(channel_, request, timeout_);
  if (!response.ok()) return response.status();
  std::vector<std::string> names;
  for (const auto& service : response->list_services_response().service()) {
    names.push_back(service.name());
  }
  return names;
}

ReflectionClient::ReflectionClient(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : channel_(channel), database_(channel, timeout), pool_(&database_) {}

absl::StatusOr<const google::protobuf::FileDescriptor*> ReflectionClient::FileContainingSymbol(
    const std::string& symbol) {
  const google::protobuf::FileDescriptor* file = pool_.FindFileContainingSymbol(symbol);
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat("symbol not found: ", symbol,
                                            database_.last_error().empty() ? "" : " (",
                                            database_.last_error(),
                                            database_.last_error().empty() ? "" : ")"));
  }
  return file;
}

absl::StatusOr<std::vector<std::string>> ReflectionClient::Call(
    const std::string& method_name, const std::vector<std::string>& json_requests,
    absl::Duration timeout, const std::vector<std::pair<std::string, std::string>>& metadata) {
  // "pkg.Service/Method" or "pkg.Service.Method".
  size_t split = method_name.find('/');
  if (split == std::string::npos) split = method_name.rfind('.');
  if (split == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("not a method name: ", method_name));
  }
  const std::string service_name = method_name.substr(0, split);
  const google::protobuf::ServiceDescriptor* service = pool_.FindServiceByName(service_name);
  if (service == nullptr) {
    return absl::NotFoundError(absl::StrCat("service not found: ", service_name, " (",
                                            database_.last_error(), ")"));
  }
  const google::protobuf::MethodDescriptor* method =
      service->FindMethodByName(method_name.substr(split + 1));
  if (method == nullptr) {
    return absl::NotFoundError(absl::StrCat("method not found: ", method_name));
  }

  google::protobuf::DynamicMessageFactory factory(&pool_);
  std::vector<std::string> requests;
  for (const std::string& json : json_requests.empty() ? std::vector<std::string>{"{}"}
                                                       : json_requests) {
    std::unique_ptr<google::protobuf::Message> request(
        factory.GetPrototype(method->input_type())->New());
    auto parsed = google::protobuf::util::JsonStringToMessage(json, request.get());
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("request for ", method->full_name(),
                                                     ": ", parsed.ToString()));
    }
    requests.push_back(request->SerializeAsString());
  }

  // One generic stream serves every method shape: write the requests, close
  // the sending side, read until the server ends the stream.
  grpc::GenericStub stub(channel_);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  for (const auto& [name, value] : metadata) context.AddMetadata(name, value);
  grpc::CompletionQueue cq;
  const std::string path = absl::StrCat("/", service->full_name(), "/", method->name());
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&context, path, &cq);
  auto await = [&cq]() {
    void* tag = nullptr;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok;
  };
  std::vector<std::string> responses;
  call->StartCall(reinterpret_cast<void*>(1));
  bool ok = await();
  for (size_t i = 0; ok && i < requests.size(); ++i) {
    grpc::Slice slice(requests[i]);
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, reinterpret_cast<void*>(2));
    ok = await();
  }
  if (ok) {
    call->WritesDone(reinterpret_cast<void*>(3));
    ok = await();
  }
  while (ok) {
    grpc::ByteBuffer buffer;
    call->Read(&buffer, reinterpret_cast<void*>(4));
    if (!await()) break;
    std::vector<grpc::Slice> slices;
    buffer.Dump(&slices);
    std::string bytes;
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    std::unique_ptr<google::protobuf::Message> response(
        factory.GetPrototype(method->output_type())->New());
    if (!response->ParseFromString(bytes)) {
      context.TryCancel();
      return absl::DataLossError(absl::StrCat("unparsable ", method->output_type()->full_name()));
    }
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    std::string json;
    auto printed = google::protobuf::util::MessageToJsonString(*response, &json, options);
    if (!printed.ok()) {
      context.TryCancel();
      return absl::InternalError(absl::StrCat("printing the response: ", printed.ToString()));
    }
    responses.push_back(std::move(json));
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  await();
  cq.Shutdown();
  void* tag = nullptr;
  bool drained = false;
  while (cq.Next(&tag, &drained)) {
  }
  if (!status.ok()) return FromGrpc(status);
  return responses;
}

}  // namespace conveyor::testing
