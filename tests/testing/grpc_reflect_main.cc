// grpc-reflect: the part of grpcurl that the README and the tests use, over
// server reflection only (grpcurl itself is not packaged in Debian 12):
//
//   grpc-reflect -plaintext ADDRESS list [SERVICE]
//   grpc-reflect -plaintext ADDRESS describe [SYMBOL]
//   grpc-reflect -plaintext [-H "name: value"]... [-d JSON | -d @] [-max-time SECONDS]
//                ADDRESS METHOD
//
// TLS instead of -plaintext, with grpcurl's flags: -cacert FILE (default the
// system roots), -cert FILE -key FILE (client certificate for mTLS),
// -servername NAME (name to verify).
//
// Same arguments and, for these, the same behaviour as grpcurl: `-d @` reads
// the request JSON from stdin; each response is printed as JSON; an RPC error
// prints "ERROR:" with its code and message and exits 64 + the gRPC code.
// tests/integration/readme_grpcurl_test runs the README's grpcurl lines with
// this standing in for grpcurl.
#include <google/protobuf/descriptor.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/tls_credentials.h"
#include "tests/testing/reflection_client.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitFailed = 1;

int Usage(const std::string& why) {
  std::cerr << "grpc-reflect: " << why << "\n"
            << "usage: grpc-reflect (-plaintext | [-cacert F] [-cert F -key F] "
               "[-servername N]) [-d JSON|@] [-max-time SECONDS] ADDRESS "
               "(list [SERVICE] | describe [SYMBOL] | METHOD)\n";
  return kExitUsage;
}

// grpcurl's names for the codes (Go's codes.Code.String()).
const char* GoCodeName(absl::StatusCode code) {
  static const char* const kNames[] = {
      "OK",       "Canceled",          "Unknown",          "InvalidArgument", "DeadlineExceeded",
      "NotFound", "AlreadyExists",     "PermissionDenied", "ResourceExhausted",
      "FailedPrecondition", "Aborted", "OutOfRange",       "Unimplemented",   "Internal",
      "Unavailable", "DataLoss",       "Unauthenticated"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < static_cast<int>(std::size(kNames)) ? kNames[i] : "Unknown";
}

int Failed(const absl::Status& status) {
  std::cerr << "ERROR:\n  Code: " << GoCodeName(status.code())
            << "\n  Message: " << status.message() << "\n";
  return 64 + static_cast<int>(status.code());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::string data;
  bool have_data = false;
  std::vector<std::pair<std::string, std::string>> headers;
  double max_time_s = 30;
  conveyor::ChannelTlsOptions tls;
  tls.ca_flag = "-cacert";
  tls.cert_flag = "-cert";
  tls.key_flag = "-key";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    // grpcurl takes flags with one dash or two, "-d x" or "-d=x".
    std::string name = arg;
    std::string value;
    bool has_value = false;
    if (absl::StartsWith(arg, "-") && arg != "-") {
      name = std::string(absl::StripPrefix(absl::StripPrefix(arg, "-"), "-"));
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      auto take_value = [&]() -> bool {
        if (has_value) return true;
        if (i + 1 >= argc) return false;
        value = argv[++i];
        return true;
      };
      if (name == "plaintext") {
        tls.insecure = true;
        continue;
      }
      if (name == "cacert" || name == "cert" || name == "key" || name == "servername") {
        if (!take_value()) return Usage("-" + name + " needs a value");
        std::string& field = name == "cacert" ? tls.ca_file
                             : name == "cert" ? tls.cert_file
                             : name == "key"  ? tls.key_file
                                              : tls.server_name;
        field = value;
      } else if (name == "H" || name == "rpc-header") {
        // "name: value", as grpcurl takes it; sent with the RPC (reflection
        // needs no credentials here).
        if (!take_value()) return Usage("-" + name + " needs a value");
        const size_t colon = value.find(':');
        if (colon == std::string::npos || colon == 0) {
          return Usage("-" + name + " wants \"name: value\"");
        }
        headers.emplace_back(
            absl::AsciiStrToLower(absl::StripAsciiWhitespace(value.substr(0, colon))),
            std::string(absl::StripAsciiWhitespace(value.substr(colon + 1))));
      } else if (name == "d") {
        if (!take_value()) return Usage("-d needs a value");
        data = value;
        have_data = true;
      } else if (name == "max-time" || name == "connect-timeout") {
        if (!take_value() || !absl::SimpleAtod(value, &max_time_s) || max_time_s <= 0) {
          return Usage("-" + name + " needs a positive number of seconds");
        }
      } else {
        return Usage("unsupported flag -" + name);
      }
      continue;
    }
    positional.push_back(arg);
  }
  if (positional.size() < 2) return Usage("want ADDRESS and a verb or method");
  if (have_data && data == "@") {
    data.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }

  const absl::Duration timeout = absl::Seconds(max_time_s);
  absl::StatusOr<conveyor::ChannelSecurity> security = conveyor::MakeChannelSecurity(tls);
  if (!security.ok()) return Usage(std::string(security.status().message()));
  grpc::ChannelArguments args;
  security->ApplyTo(args);
  auto channel = grpc::CreateCustomChannel(positional[0], security->credentials, args);
  conveyor::testing::ReflectionClient client(channel, timeout);
  const std::string& verb = positional[1];

  if (verb == "list") {
    if (positional.size() == 2) {
      absl::StatusOr<std::vector<std::string>> services = client.ListServices();
      if (!services.ok()) return Failed(services.status());
      std::sort(services->begin(), services->end());
      for (const std::string& s : *services) std::cout << s << "\n";
      return 0;
    }
    const google::protobuf::ServiceDescriptor* service =
        client.pool().FindServiceByName(positional[2]);
    if (service == nullptr) {
      return Failed(absl::NotFoundError(absl::StrCat("Service not found: ", positional[2])));
    }
    for (int m = 0; m < service->method_count(); ++m) {
      std::cout << service->method(m)->full_name() << "\n";
    }
    return 0;
  }

  if (verb == "describe") {
    std::vector<std::string> symbols;
    if (positional.size() > 2) {
      symbols.assign(positional.begin() + 2, positional.end());
    } else {
      absl::StatusOr<std::vector<std::string>> services = client.ListServices();
      if (!services.ok()) return Failed(services.status());
      symbols = *services;
      std::sort(symbols.begin(), symbols.end());
    }
    for (const std::string& symbol : symbols) {
      const std::string name(absl::StripPrefix(symbol, "."));
      absl::StatusOr<const google::protobuf::FileDescriptor*> file =
          client.FileContainingSymbol(name);
      if (!file.ok()) return Failed(file.status());
      const google::protobuf::DescriptorPool& pool = client.pool();
      if (const auto* s = pool.FindServiceByName(name)) {
        std::cout << name << " is a service:\n" << s->DebugString();
      } else if (const auto* m = pool.FindMethodByName(name)) {
        std::cout << name << " is a method:\n" << m->DebugString();
      } else if (const auto* t = pool.FindMessageTypeByName(name)) {
        std::cout << name << " is a message:\n" << t->DebugString();
      } else if (const auto* e = pool.FindEnumTypeByName(name)) {
        std::cout << name << " is an enum:\n" << e->DebugString();
      } else if (const auto* f = pool.FindFieldByName(name)) {
        std::cout << name << " is a field:\n" << f->DebugString();
      } else {
        return Failed(absl::NotFoundError(absl::StrCat("Symbol not found: ", name)));
      }
    }
    return 0;
  }

  if (positional.size() != 2) return Usage("unexpected arguments after the method");
  std::vector<std::string> requests;
  if (have_data) requests.push_back(data);
  absl::StatusOr<std::vector<std::string>> responses =
      client.Call(verb, requests, timeout, headers);
  if (!responses.ok()) {
    if (responses.status().code() == absl::StatusCode::kInvalidArgument &&
        absl::StartsWith(responses.status().message(), "request for ")) {
      std::cerr << "Error invoking method \"" << verb << "\": " << responses.status().message()
                << "\n";
      return kExitFailed;
    }
    return Failed(responses.status());
  }
  for (const std::string& json : *responses) std::cout << json << (absl::EndsWith(json, "\n") ? "" : "\n");
  return 0;
}
