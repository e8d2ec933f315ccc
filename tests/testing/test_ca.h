// A throwaway certificate authority for TLS tests, made at test time with the
// openssl command line into a directory the test owns (nothing is committed):
//
//   TempDir dir;
//   absl::StatusOr<TestCa> ca = TestCa::Create(dir.path(), "test-ca");
//   absl::StatusOr<TestCert> server = ca->Issue("orchestrator",
//       {"DNS:orchestrator", "DNS:localhost", "IP:127.0.0.1"});
//   ... --tls-cert server->cert --tls-key server->key --tls-client-ca ca->cert() ...
//
// Keys are EC P-256 (fast to make), files mode 0600 for keys. Every
// certificate is usable for both serverAuth and clientAuth, as the
// orchestrator's is (it serves the API and calls the workers).
#ifndef CONVEYOR_TESTS_TESTING_TEST_CA_H_
#define CONVEYOR_TESTS_TESTING_TEST_CA_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace conveyor::testing {

struct TestCert {
  std::string cert;  // PEM certificate path
  std::string key;   // PEM private key path
};

class TestCa {
 public:
  // A new self-signed CA "<dir>/<name>.pem" (key "<name>.key"), CN `name`.
  static absl::StatusOr<TestCa> Create(const std::string& dir, const std::string& name);

  // A certificate with CN `common_name` and the subjectAltNames `sans`
  // ("DNS:x", "IP:127.0.0.1", "URI:spiffe://..."), signed by this CA, in
  // "<dir>/<file_stem>.pem/.key" (file_stem defaults to common_name).
  // Issuing again with the same stem overwrites the files in place (the way
  // a rotation replaces them), with a new serial.
  absl::StatusOr<TestCert> Issue(const std::string& common_name,
                                 const std::vector<std::string>& sans,
                                 const std::string& file_stem = "") const;

  const std::string& cert() const { return cert_; }  // the CA certificate (PEM path)
  const std::string& dir() const { return dir_; }

 private:
  TestCa(std::string dir, std::string cert, std::string key)
      : dir_(std::move(dir)), cert_(std::move(cert)), key_(std::move(key)) {}

  std::string dir_;
  std::string cert_;
  std::string key_;
};

// The subject and serial of the certificate `host:port` serves, as
// `openssl s_client` sees it ("subject=CN = x\nserial=1A2B..."), presenting
// `client` if given, trusting `ca_cert`. Empty when the handshake failed.
std::string ServedCertificate(const std::string& address, const std::string& ca_cert,
                              const TestCert* client = nullptr);

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_TEST_CA_H_
