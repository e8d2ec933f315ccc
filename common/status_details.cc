#include "absl/strings/string_view.h"
#include "common/status_details.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"

namespace conveyor {
namespace {

constexpr absl::string_view kDomain = "conveyor.dev";

template <typename Message>
std::string TypeUrl() {
  return absl::StrCat(kTypeUrlPrefix, Message::descriptor()->full_name());
}

}  // namespace

absl::Status InvalidField(absl::string_view field, absl::string_view description) {
  absl::Status status(absl::StatusCode::kInvalidArgument,
                      absl::StrCat(field, ": ", description));
  google::rpc::BadRequest bad_request;
  auto* violation = bad_request.add_field_violations();
  violation->set_field(std::string(field));
  violation->set_description(std::string(description));
  status.SetPayload(TypeUrl<google::rpc::BadRequest>(),
                    absl::Cord(bad_request.SerializeAsString()));
  return status;
}

absl::Status WithErrorReason(absl::Status status, absl::string_view reason,
                             const std::vector<std::pair<std::string, std::string>>& metadata) {
  if (status.ok()) return status;
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain(std::string(kDomain));
  for (const auto& [key, value] : metadata) (*info.mutable_metadata())[key] = value;
  status.SetPayload(TypeUrl<google::rpc::ErrorInfo>(),
                    absl::Cord(info.SerializeAsString()));
  return status;
}

absl::Status CheckFieldLength(absl::string_view field, absl::string_view value,
                              size_t max_bytes) {
  if (value.size() <= max_bytes) return absl::OkStatus();
  return WithErrorReason(
      InvalidField(field,
                   absl::StrCat(value.size(), " bytes is over the limit of ", max_bytes, " bytes")),
                         kReasonFieldTooLong,
                         {{"field", std::string(field)},
                          {"max_bytes", absl::StrCat(max_bytes)},
                          {"bytes", absl::StrCat(value.size())}});
}

std::string QuoteForMessage(absl::string_view value, size_t max_bytes) {
  std::string out = "\"";
  for (char c : value.substr(0, max_bytes)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '"' || c == '\\') {
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(c);
      } else {
        absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
      }
    } else {
      out.push_back(c);
    }
  }
  if (value.size() > max_bytes) out += "...";
  out += "\"";
  return out;
}

std::string ErrorReason(const absl::Status& status) {
  auto payload = status.GetPayload(TypeUrl<google::rpc::ErrorInfo>());
  if (!payload.has_value()) return "";
  google::rpc::ErrorInfo info;
  if (!info.ParseFromString(std::string(*payload))) return "";
  return info.reason();
}

google::rpc::Status ToRpcStatus(const absl::Status& status) {
  google::rpc::Status rpc;
  rpc.set_code(static_cast<int>(status.code()));
  rpc.set_message(std::string(status.message()));
  status.ForEachPayload([&rpc](absl::string_view type_url, const absl::Cord& value) {
    auto* any = rpc.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(value));
  });
  return rpc;
}

absl::Status FromRpcStatus(const google::rpc::Status& rpc) {
  absl::Status status(static_cast<absl::StatusCode>(rpc.code()), rpc.message());
  if (status.ok()) return status;
  for (const auto& any : rpc.details()) {
    status.SetPayload(any.type_url(), absl::Cord(any.value()));
  }
  return status;
}

}  // namespace conveyor
