#include "tests/testing/http_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace conveyor::testing {

HttpTestServer::HttpTestServer() : server_(std::make_unique<httplib::Server>()) { Bind(); }

HttpTestServer::HttpTestServer(const TlsFiles& tls)
    : server_(std::make_unique<httplib::SSLServer>(tls.cert_path.c_str(), tls.key_path.c_str())),
      tls_(true) {
  if (!server_->is_valid()) {
    std::cerr << "HttpTestServer: cannot load " << tls.cert_path << " / " << tls.key_path << "\n";
    std::abort();
  }
  Bind();
}

void HttpTestServer::Bind() {
  // Idle keep-alive connections hold a server thread, and stop() joins them:
  // keep the wait short.
  server_->set_keep_alive_timeout(1);
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) {
    std::cerr << "HttpTestServer: cannot bind 127.0.0.1:0\n";
    std::abort();
  }
}

HttpTestServer::~HttpTestServer() {
  stopping_.Notify();
  // httplib's stop() only closes the socket of a running server: a server
  // never started is started first, so its socket is closed too.
  if (!thread_.joinable()) Start();
  server_->stop();
  thread_.join();
}

void HttpTestServer::Start() {
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() is a no-op until the accept loop runs: wait for it (bounded).
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!server_->is_running()) {
    if (absl::Now() > give_up) {
      std::cerr << "HttpTestServer: accept loop did not start within 10s\n";
      std::abort();
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
}

std::string HttpTestServer::Url(absl::string_view path, absl::string_view host) const {
  return absl::StrCat(tls_ ? "https://" : "http://", host, ":", port_, path);
}

absl::Status WriteSelfSignedCertificate(const std::string& dir, TlsFiles& files) {
  struct Owned {
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    ~Owned() {
      X509_free(cert);
      EVP_PKEY_free(key);
    }
  } owned;
  owned.key = EVP_EC_gen("P-256");
  owned.cert = X509_new();
  if (owned.key == nullptr || owned.cert == nullptr) return absl::InternalError("OpenSSL alloc");
  X509* cert = owned.cert;
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, owned.key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, cert, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] :
       {std::pair<int, const char*>{NID_subject_alt_name, "IP:127.0.0.1"},
        {NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
    if (extension == nullptr) return absl::InternalError("X509V3_EXT_conf_nid failed");
    X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
  }
  if (X509_sign(cert, owned.key, EVP_sha256()) == 0) return absl::InternalError("X509_sign");

  files.cert_path = absl::StrCat(dir, "/cert.pem");
  files.key_path = absl::StrCat(dir, "/key.pem");
  FILE* cert_file = std::fopen(files.cert_path.c_str(), "w");
  FILE* key_file = std::fopen(files.key_path.c_str(), "w");
  bool written = cert_file != nullptr && key_file != nullptr && PEM_write_X509(cert_file, cert) &&
                 PEM_write_PrivateKey(key_file, owned.key, nullptr, nullptr, 0, nullptr, nullptr);
  if (cert_file != nullptr) written = std::fclose(cert_file) == 0 && written;
  if (key_file != nullptr) written = std::fclose(key_file) == 0 && written;
  return written ? absl::OkStatus() : absl::InternalError("cannot write the PEM files");
}


bool HttpTestServer::SleepUnlessStopping(absl::Duration duration) {
  return !stopping_.WaitForNotificationWithTimeout(duration);
}

}  // namespace conveyor::testing
