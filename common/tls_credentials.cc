#include "common/tls_credentials.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/allowed_peer.h"

namespace conveyor {
namespace {

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Deleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using UniqueBio = std::unique_ptr<BIO, BioDeleter>;
using UniqueX509 = std::unique_ptr<X509, X509Deleter>;
using UniqueKey = std::unique_ptr<EVP_PKEY, KeyDeleter>;

absl::StatusOr<std::string> ReadPemFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read \"", path, "\": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

UniqueBio BioOf(const std::string& text) {
  return UniqueBio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// The first object `read` (a PEM_read_bio_* function) finds in the PEM file
// at `path`, or an error saying it holds no `what`.
template <typename Unique, typename Reader>
absl::StatusOr<Unique> ReadPemObject(const std::string& flag, const std::string& path,
                                     Reader read, absl::string_view what) {
  absl::StatusOr<std::string> text = ReadPemFile(flag, path);
  if (!text.ok()) return text.status();
  UniqueBio bio = BioOf(*text);
  Unique object(read(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (object == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": \"", path, "\" holds no ", what));
  }
  return object;
}

// The first certificate of the file (a chain's leaf).
absl::StatusOr<UniqueX509> ReadCertificate(const std::string& flag, const std::string& path) {
  return ReadPemObject<UniqueX509>(flag, path, PEM_read_bio_X509,
                                   "PEM certificate (BEGIN CERTIFICATE)");
}

absl::StatusOr<UniqueKey> ReadPrivateKey(const std::string& flag, const std::string& path) {
  return ReadPemObject<UniqueKey>(flag, path, PEM_read_bio_PrivateKey,
                                  "unencrypted PEM private key (BEGIN PRIVATE KEY)");
}

// Cert and key both given, both parse, and the key is the certificate's.
absl::Status CheckKeyPair(const std::string& cert_flag, const std::string& cert_file,
                          const std::string& key_flag, const std::string& key_file) {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError(
        cert_file.empty() ? absl::StrCat(key_flag, " needs ", cert_flag, " (its certificate)")
                          : absl::StrCat(cert_flag, " needs ", key_flag, " (its private key)"));
  }
  if (cert_file.empty()) return absl::OkStatus();
  absl::StatusOr<UniqueX509> cert = ReadCertificate(cert_flag, cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<UniqueKey> key = ReadPrivateKey(key_flag, key_file);
  if (!key.ok()) return key.status();
  const int matches = X509_check_private_key(cert->get(), key->get());
  ERR_clear_error();
  if (matches != 1) {
    return absl::InvalidArgumentError(absl::StrCat(key_flag, ": \"", key_file,
                                                   "\" is not the private key of ", cert_flag,
                                                   " \"", cert_file, "\""));
  }
  return absl::OkStatus();
}

absl::Status CheckCaFile(const std::string& flag, const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  return ReadCertificate(flag, path).status();
}

}  // namespace

unsigned int ReloadIntervalSeconds(absl::Duration interval) {
  return static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(interval)));
}

bool ServerUsesTls(const ServerTlsOptions& options) {
  return !options.cert_file.empty() || !options.key_file.empty() ||
         !options.client_ca_file.empty();
}

absl::Status CheckServerTls(const ServerTlsOptions& options) {
  if (!ServerUsesTls(options)) {
    if (!options.insecure) {
      return absl::InvalidArgumentError(
          "no TLS: pass --tls-cert and --tls-key (and --tls-client-ca for mTLS), or "
          "--insecure to serve plaintext (docs/security.md, \"TLS and mTLS\")");
    }
    if (!options.allowed_client_name.empty()) {
      return absl::InvalidArgumentError(
          "--tls-client-name needs --tls-client-ca: only a verified client certificate "
          "has a name");
    }
    return absl::OkStatus();
  }
  if (options.cert_file.empty() && options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-client-ca needs --tls-cert and --tls-key (the server's own certificate)");
  }
  if (absl::Status s = CheckKeyPair("--tls-cert", options.cert_file, "--tls-key", options.key_file);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckCaFile("--tls-client-ca", options.client_ca_file); !s.ok()) return s;
  if (!options.allowed_client_name.empty() && options.client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-client-name needs --tls-client-ca: only a verified client certificate has a "
        "name");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsOptions& options) {
  if (absl::Status s = CheckServerTls(options); !s.ok()) return s;
  if (!ServerUsesTls(options)) return grpc::InsecureServerCredentials();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.key_file, options.cert_file, options.client_ca_file,
      ReloadIntervalSeconds(options.reload_interval));
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (!options.client_ca_file.empty()) {
    tls.watch_root_certs();
    tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::experimental::TlsServerCredentials(tls);
  if (credentials == nullptr) {
    return absl::InvalidArgumentError("gRPC refused the TLS server options");
  }
  if (!options.allowed_client_name.empty()) {
    credentials->SetAuthMetadataProcessor(
        std::make_shared<AllowedPeerProcessor>(options.allowed_client_name));
  }
  return credentials;
}

void ChannelSecurity::ApplyTo(grpc::ChannelArguments& args) const {
  if (tls && !server_name.empty()) args.SetSslTargetNameOverride(server_name);
}

absl::StatusOr<ChannelSecurity> MakeChannelSecurity(const ChannelTlsOptions& options) {
  ChannelSecurity security;
  const bool any_tls_flag = !options.ca_file.empty() || !options.cert_file.empty() ||
                            !options.key_file.empty() || !options.server_name.empty();
  if (!any_tls_flag && options.insecure) {
    security.credentials = grpc::InsecureChannelCredentials();
    return security;
  }
  if (options.ca_file.empty() && !options.system_roots_allowed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no TLS: pass ", options.ca_flag, " (the CA of the servers' certificates; with ", options.cert_flag, " and ",
        options.key_flag, " for mTLS), or --insecure for plaintext"));
  }
  if (absl::Status s = CheckCaFile(options.ca_flag, options.ca_file); !s.ok()) return s;
  if (absl::Status s =
          CheckKeyPair(options.cert_flag, options.cert_file, options.key_flag, options.key_file);
      !s.ok()) {
    return s;
  }
  grpc::experimental::TlsChannelCredentialsOptions tls;
  if (!options.ca_file.empty() || !options.cert_file.empty()) {
    auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        options.key_file, options.cert_file, options.ca_file,
        ReloadIntervalSeconds(options.reload_interval));
    tls.set_certificate_provider(provider);
    // Without watch_root_certs the system roots are used.
    if (!options.ca_file.empty()) tls.watch_root_certs();
    if (!options.cert_file.empty()) tls.watch_identity_key_cert_pairs();
  }
  tls.set_verify_server_certs(true);
  security.credentials = grpc::experimental::TlsCredentials(tls);
  if (security.credentials == nullptr) {
    return absl::InvalidArgumentError("gRPC refused the TLS channel options");
  }
  security.server_name = options.server_name;
  security.tls = true;
  return security;
}

}  // namespace conveyor
