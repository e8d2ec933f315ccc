#include "tests/testing/test_ca.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/testing/command_runner.h"

namespace conveyor::testing {
namespace {

constexpr char kOpenssl[] = "/usr/bin/openssl";

absl::Status Run(const std::vector<std::string>& argv) {
  CommandResult result = RunCommand(argv, absl::Seconds(30));
  if (result.exit_code != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), " exited ",
                                            result.exit_code, ": ", result.err));
  }
  return absl::OkStatus();
}

absl::Status NewKey(const std::string& path) {
  if (absl::Status s = Run({kOpenssl, "genpkey", "-algorithm", "EC", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-out", path});
      !s.ok()) {
    return s;
  }
  ::chmod(path.c_str(), 0600);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TestCa> TestCa::Create(const std::string& dir, const std::string& name) {
  const std::string key = absl::StrCat(dir, "/", name, ".key");
  const std::string cert = absl::StrCat(dir, "/", name, ".pem");
  if (absl::Status s = NewKey(key); !s.ok()) return s;
  if (absl::Status s = Run({kOpenssl, "req", "-x509", "-new", "-key", key, "-sha256", "-days",
                            "2", "-subj", absl::StrCat("/CN=", name), "-addext",
                            "basicConstraints=critical,CA:TRUE", "-addext",
                            "keyUsage=critical,keyCertSign,cRLSign", "-out", cert});
      !s.ok()) {
    return s;
  }
  return TestCa(dir, cert, key);
}

absl::StatusOr<TestCert> TestCa::Issue(const std::string& common_name,
                                       const std::vector<std::string>& sans,
                                       const std::string& file_stem) const {
  const std::string stem = absl::StrCat(dir_, "/", file_stem.empty() ? common_name : file_stem);
  // Written next to the final files and renamed over them, so a server
  // reloading mid-issue never reads a half-written file (between the two
  // renames it may see a new key with the old certificate: gRPC's provider
  // keeps the pair it had and takes the new one at its next refresh).
  const std::string key_tmp = stem + ".key.new";
  const std::string csr = stem + ".csr";
  const std::string cert_tmp = stem + ".pem.new";
  const std::string ext = stem + ".ext";
  {
    std::ofstream out(ext, std::ios::trunc);
    out << "basicConstraints=CA:FALSE\n"
           "keyUsage=critical,digitalSignature,keyEncipherment\n"
           "extendedKeyUsage=serverAuth,clientAuth\n";
    if (!sans.empty()) out << "subjectAltName=" << absl::StrJoin(sans, ",") << "\n";
  }
  if (absl::Status s = NewKey(key_tmp); !s.ok()) return s;
  if (absl::Status s = Run({kOpenssl, "req", "-new", "-key", key_tmp, "-subj",
                            absl::StrCat("/CN=", common_name), "-out", csr});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Run({kOpenssl, "x509", "-req", "-in", csr, "-CA", cert_, "-CAkey", key_,
                            "-set_serial", absl::StrCat("0x", std::to_string(::time(nullptr)),
                                                        std::to_string(::rand() % 100000)),
                            "-days", "2", "-sha256", "-extfile", ext, "-out", cert_tmp});
      !s.ok()) {
    return s;
  }
  TestCert issued{stem + ".pem", stem + ".key"};
  if (std::rename(key_tmp.c_str(), issued.key.c_str()) != 0 ||
      std::rename(cert_tmp.c_str(), issued.cert.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename the new files into ", stem));
  }
  std::remove(csr.c_str());
  std::remove(ext.c_str());
  return issued;
}

std::string ServedCertificate(const std::string& address, const std::string& ca_cert,
                              const TestCert* client) {
  std::vector<std::string> argv = {kOpenssl, "s_client", "-connect", address, "-CAfile", ca_cert,
                                   "-verify_return_error", "-showcerts"};
  if (client != nullptr) {
    argv.insert(argv.end(), {"-cert", client->cert, "-key", client->key});
  }
  // s_client's output, piped into `openssl x509` by a shell: s_client reads
  // stdin (here /dev/null, so it ends after the handshake).
  std::string command;
  for (const std::string& arg : argv) absl::StrAppend(&command, "'", arg, "' ");
  absl::StrAppend(&command, "2>/dev/null | ", kOpenssl, " x509 -noout -subject -serial");
  CommandResult result = RunCommand({"/bin/sh", "-c", command}, absl::Seconds(20));
  if (result.exit_code != 0) return "";
  return result.out;
}

}  // namespace conveyor::testing
