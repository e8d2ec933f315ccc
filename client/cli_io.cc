#include "client/cli_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/chain_filter_flags.h"
#include "client/connection_hint.h"
#include "client/flag_values.h"
#include "client/format.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace conveyor::client {

int UsageError(const absl::Status& status) {
  std::cerr << "error: " << status.message() << "\nRun with --help for usage.\n";
  return kExitUsage;
}

std::string RpcErrorHint(const grpc::Status& status, const TokenSource& sent) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return ConnectionHint(status.error_message());
    case grpc::StatusCode::UNAUTHENTICATED:
      return UnauthenticatedHint(sent);
    case grpc::StatusCode::PERMISSION_DENIED:
      return PermissionDeniedHint(status.error_message(), sent);
    default:
      return "";
  }
}

std::string RpcErrorText(const grpc::Status& status, const TokenSource& sent) {
  std::string text =
      absl::StrCat("error: ", CodeName(status.error_code()), ": ", status.error_message());
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      google::rpc::BadRequest bad_request;
      if (!any.UnpackTo(&bad_request)) continue;
      for (const auto& violation : bad_request.field_violations()) {
        if (absl::StrContains(status.error_message(), violation.description())) continue;
        absl::StrAppend(&text, "\n  ", violation.field(), ": ", violation.description());
      }
    }
  }
  if (std::string hint = RpcErrorHint(status, sent); !hint.empty()) {
    absl::StrAppend(&text, "\n", hint);
  }
  return text;
}

int RpcError(const grpc::Status& status, const TokenSource& sent) {
  std::cerr << RpcErrorText(status, sent) << "\n";
  return kExitRpcError;
}

absl::StatusOr<std::string> ReadWholeFile(absl::string_view flag, const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read \"", path, "\": ", std::strerror(errno)));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<absl::Duration> OptionalDuration(absl::string_view flag, const std::string& text) {
  if (text.empty()) return absl::InfiniteDuration();
  return ParseDurationFlag(flag, text);
}

bool StdoutIsTerminal() { return isatty(STDOUT_FILENO) == 1; }

int Confirm(absl::string_view verb, int64_t count) {
  if (isatty(STDIN_FILENO) != 1) {
    std::cerr << "error: refusing to " << verb << " " << count
              << (count == 1 ? " chain" : " chains")
              << " without confirmation: stdin is not a terminal. Pass --yes to confirm "
                 "(or --dry-run to only see what would change).\n";
    return kExitUsage;
  }
  std::cerr << ConfirmQuestion(verb, count) << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer) || !IsYes(answer)) {
    std::cerr << "Nothing changed.\n";
    return kExitChainFailed;
  }
  return kExitOk;
}

void PrintResult(const GlobalOptions& global, const google::protobuf::Message& message,
                 const std::string& text) {
  std::cout << (global.json ? ToJson(message, /*pretty=*/true) + "\n" : text);
}

void PrintChainState(const GlobalOptions& global, const conveyor::v1::Chain& chain) {
  PrintResult(global, chain, absl::StrCat(chain.name(), " ", StateName(chain.state()), "\n"));
}

}  // namespace conveyor::client
