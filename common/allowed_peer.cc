#include "common/allowed_peer.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"

namespace conveyor {

absl::Status CheckPeerName(const std::vector<PeerProperty>& properties, absl::string_view allowed) {
  std::vector<std::string> names;
  for (const auto& [key, value] : properties) {
    if (key == GRPC_X509_CN_PROPERTY_NAME || key == GRPC_X509_SAN_PROPERTY_NAME ||
        key == GRPC_PEER_DNS_PROPERTY_NAME || key == GRPC_PEER_URI_PROPERTY_NAME) {
      if (value == allowed) return absl::OkStatus();
      names.push_back(value);
    }
  }
  if (names.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "this worker serves only the client certificate named \"", allowed,
        "\" (--tls-client-name); the call came without a client certificate"));
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "this worker serves only the client certificate named \"", allowed,
      "\" (--tls-client-name); the caller's certificate names ", absl::StrJoin(names, ", ")));
}

bool IsOpenMethod(absl::string_view path) {
  return absl::StartsWith(path, "/grpc.health.v1.Health/") ||
         absl::StartsWith(path, "/grpc.reflection.");
}

grpc::Status AllowedPeerProcessor::Process(const InputMetadata& auth_metadata,
                                           grpc::AuthContext* context,
                                           OutputMetadata* /*consumed_auth_metadata*/,
                                           OutputMetadata* /*response_metadata*/) {
  std::string path;
  if (auto it = auth_metadata.find(":path"); it != auth_metadata.end()) {
    path = std::string(it->second.data(), it->second.size());
  }
  if (IsOpenMethod(path)) return grpc::Status::OK;
  std::vector<PeerProperty> properties;
  if (context != nullptr) {
    for (auto it = context->begin(); it != context->end(); ++it) {
      const grpc::AuthProperty property = *it;
      properties.emplace_back(std::string(property.first.data(), property.first.size()),
                              std::string(property.second.data(), property.second.size()));
    }
  }
  absl::Status allowed = CheckPeerName(properties, allowed_);
  if (!allowed.ok()) {
    LogLine(LogLevel::kWarning).Add("msg", "call refused: client certificate not allowed")
        .Add("rpc", path).Add("error", allowed.message());
  }
  if (allowed.ok()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, std::string(allowed.message()));
}

}  // namespace conveyor
