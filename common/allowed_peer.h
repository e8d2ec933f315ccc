// --tls-client-name: with mTLS on, a worker serves its stage method only to
// the client whose verified certificate carries one name (the
// orchestrator's): any other certificate of the same CA (the CLI's, another
// worker's) gets PERMISSION_DENIED. Without it, a stolen-but-valid CLI
// certificate could have the webhook worker sign reports to anywhere.
//
// Health (grpc.health.v1) and reflection stay open to every client the
// handshake accepted, so an operator's certificate can still probe a worker;
// they do no work and reveal nothing but the service names.
//
// Installed on the server credentials as a gRPC AuthMetadataProcessor, so it
// runs once per call before any service code, for every worker alike.
#ifndef CONVEYOR_COMMON_ALLOWED_PEER_H_
#define CONVEYOR_COMMON_ALLOWED_PEER_H_

#include <grpcpp/security/auth_metadata_processor.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace conveyor {

// One property of a call's auth context: ("x509_common_name", "orchestrator").
using PeerProperty = std::pair<std::string, std::string>;

// OK if the certificate's properties name `allowed` as a SAN DNS name
// (x509_subject_alternative_name / peer_dns), a SAN URI (peer_uri) or its CN;
// PERMISSION_DENIED saying which names it has and which was wanted
// otherwise (no certificate at all included).
absl::Status CheckPeerName(const std::vector<PeerProperty>& properties, absl::string_view allowed);

// True for methods every authenticated client may call: health and
// reflection. `path` is ":path", e.g. "/grpc.health.v1.Health/Check".
bool IsOpenMethod(absl::string_view path);

// The processor for the server credentials. Thread-safe (immutable).
class AllowedPeerProcessor : public grpc::AuthMetadataProcessor {
 public:
  explicit AllowedPeerProcessor(std::string allowed) : allowed_(std::move(allowed)) {}

  // Cheap and non-blocking: run on gRPC's own thread.
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

 private:
  const std::string allowed_;
};

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_ALLOWED_PEER_H_
