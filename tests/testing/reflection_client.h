// A server-reflection client: what grpcurl does, for tests and for
// tools/grpc-reflect (grpcurl is not packaged in Debian 12). Everything it
// knows about a server's types comes over the network from
// grpc.reflection.v1alpha.ServerReflection, never from compiled-in stubs.
//
//   ReflectionClient client(grpc::CreateChannel(address, ...));
//   absl::StatusOr<std::vector<std::string>> services = client.ListServices();
//   const google::protobuf::ServiceDescriptor* health =
//       client.pool().FindServiceByName("grpc.health.v1.Health");
//   absl::StatusOr<std::vector<std::string>> replies =
//       client.Call("grpc.health.v1.Health/Check", R"({"service": ""})", timeout);
//
// Not thread-safe: one client per thread.
#ifndef CONVEYOR_TESTS_TESTING_REFLECTION_CLIENT_H_
#define CONVEYOR_TESTS_TESTING_REFLECTION_CLIENT_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor_database.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace conveyor::testing {

// A DescriptorDatabase answered by a server's reflection service: each
// lookup asks it for the file (and, through the pool, its dependencies).
class ReflectionDescriptorDatabase : public google::protobuf::DescriptorDatabase {
 public:
  explicit ReflectionDescriptorDatabase(std::shared_ptr<grpc::Channel> channel,
                                        absl::Duration timeout = absl::Seconds(10));
  ~ReflectionDescriptorDatabase() override;

  bool FindFileByName(const std::string& filename,
                      google::protobuf::FileDescriptorProto* output) override;
  bool FindFileContainingSymbol(const std::string& symbol_name,
                                google::protobuf::FileDescriptorProto* output) override;
  bool FindFileContainingExtension(const std::string& containing_type, int field_number,
                                   google::protobuf::FileDescriptorProto* output) override;

  // list_services; an error if reflection cannot be reached or refuses.
  absl::StatusOr<std::vector<std::string>> ListServices();
  // The reflection service's error for the last failed lookup, if any.
  const std::string& last_error() const { return last_error_; }

 private:
  // Sends one request on a fresh stream, stores every file in the answer,
  // and returns the one asked for in `output`.
  bool AskForFile(const std::string& what, bool by_symbol,
                  google::protobuf::FileDescriptorProto* output);

  std::shared_ptr<grpc::Channel> channel_;
  absl::Duration timeout_;
  google::protobuf::SimpleDescriptorDatabase cache_;
  std::set<std::string> cached_files_;
  std::string last_error_;
};

class ReflectionClient {
 public:
  explicit ReflectionClient(std::shared_ptr<grpc::Channel> channel,
                            absl::Duration timeout = absl::Seconds(10));

  absl::StatusOr<std::vector<std::string>> ListServices() { return database_.ListServices(); }
  // The pool built from what the server sent; lookups in it go to the server.
  const google::protobuf::DescriptorPool& pool() const { return pool_; }
  // The descriptor of `symbol` (service, method, message, enum), or
  // NOT_FOUND with the server's reason.
  absl::StatusOr<const google::protobuf::FileDescriptor*> FileContainingSymbol(
      const std::string& symbol);

  // Calls `method` ("pkg.Service/Method" or "pkg.Service.Method") with the
  // requests in `json_requests` (one JSON object each; none = one empty
  // request), built as dynamic messages from the reflected descriptors, and
  // returns every response as JSON (protobuf's mapping, as grpcurl prints).
  // Unary and streaming alike. A non-OK call returns its status (as
  // absl::Status: code and message), responses before it are lost.
  // `metadata` (name, value) pairs go with the call, e.g. ("authorization",
  // "Bearer ...").
  absl::StatusOr<std::vector<std::string>> Call(
      const std::string& method, const std::vector<std::string>& json_requests,
      absl::Duration timeout,
      const std::vector<std::pair<std::string, std::string>>& metadata = {});

 private:
  std::shared_ptr<grpc::Channel> channel_;
  ReflectionDescriptorDatabase database_;
  google::protobuf::DescriptorPool pool_;
};

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_REFLECTION_CLIENT_H_
