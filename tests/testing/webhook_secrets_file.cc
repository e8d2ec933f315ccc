#include "tests/testing/webhook_secrets_file.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>

namespace conveyor::testing {
namespace {

void WriteOwnerOnly(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::trunc | std::ios::binary) << contents;
  ::chmod(path.c_str(), 0600);
}

}  // namespace

WebhookSecretsFile::WebhookSecretsFile(const std::string& contents)
    : path_(dir_.path() + "/webhook-secrets") {
  WriteOwnerOnly(path_, contents);
}

void WebhookSecretsFile::Replace(const std::string& contents) const {
  const std::string next = path_ + ".next";
  WriteOwnerOnly(next, contents);
  std::rename(next.c_str(), path_.c_str());
}

}  // namespace conveyor::testing
