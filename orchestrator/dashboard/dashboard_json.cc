#include "orchestrator/dashboard/dashboard_json.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/stage_registry.h"
#include "orchestrator/auth/scope_check.h"

namespace conveyor::orchestrator::dashboard {
namespace {

constexpr Scope kEveryScope[] = {Scope::kSubmit, Scope::kRead, Scope::kCancel, Scope::kAdmin};

absl::Status BadParam(absl::string_view name, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("query parameter ", name, ": ", why));
}

// A duration back from `now` ("1h", "90s") or an RFC 3339 time.
absl::StatusOr<google::protobuf::Timestamp> ParseWhen(absl::string_view name,
                                                      const std::string& value, absl::Time now) {
  absl::Duration ago;
  if (absl::ParseDuration(value, &ago)) {
    if (ago < absl::ZeroDuration()) return BadParam(name, "want a positive duration");
    return ToProtoTime(now - ago);
  }
  absl::Time when;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, value, &when, &error)) return ToProtoTime(when);
  return BadParam(name, "want a duration such as 1h or 30m, or an RFC 3339 time");
}

}  // namespace

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  // Our own messages always convert; an error would leave "" and the page
  // shows it as a bad reply.
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

std::string ErrorJson(const absl::Status& status) {
  // By hand rather than as a Struct, whose map prints in no fixed order:
  // the same error is the same bytes. Each string is escaped as a JSON Value.
  google::protobuf::Value code;
  code.set_string_value(absl::StatusCodeToString(status.code()));
  google::protobuf::Value message;
  message.set_string_value(std::string(status.message()));
  return absl::StrCat("{\"code\":", ToJson(code), ",\"message\":", ToJson(message), "}");
}

std::string CallerJson(const Caller& caller) {
  google::protobuf::Struct json;
  (*json.mutable_fields())["principal"].set_string_value(caller.principal);
  (*json.mutable_fields())["tenant"].set_string_value(caller.tenant);
  google::protobuf::ListValue* scopes = (*json.mutable_fields())["scopes"].mutable_list_value();
  for (Scope scope : kEveryScope) {
    if (caller.Has(scope))
      scopes->add_values()->set_string_value(std::string(auth::ScopeName(scope)));
  }
  return ToJson(json);
}

absl::StatusOr<conveyor::v1::ListChainsRequest> ParseChainQuery(const QueryParams& params,
                                                                absl::Time now) {
  conveyor::v1::ListChainsRequest request;
  for (const auto& [name, value] : params) {
    if (value.empty()) continue;
    if (name == "state") {
      conveyor::v1::State state;
      if (!conveyor::v1::State_Parse(absl::AsciiStrToUpper(value), &state) ||
          state == conveyor::v1::STATE_UNSPECIFIED) {
        return BadParam(name, "want PENDING, RUNNING, RETRYING, SUCCEEDED, FAILED or CANCELLED");
      }
      request.set_state(state);
    } else if (name == "label") {
      const size_t eq = value.find('=');
      if (eq == std::string::npos || eq == 0) return BadParam(name, "want key=value");
      (*request.mutable_labels())[value.substr(0, eq)] = value.substr(eq + 1);
    } else if (name == "stage") {
      const StageInfo* stage = FindStageByName(absl::AsciiStrToLower(value));
      if (stage == nullptr) return BadParam(name, absl::StrCat("want one of ", StageNames()));
      request.set_stage(stage->kind);
    } else if (name == "error") {
      request.set_error_reason(value);
    } else if (name == "since" || name == "until" || name == "ended_since" ||
               name == "ended_until") {
      absl::StatusOr<google::protobuf::Timestamp> when = ParseWhen(name, value, now);
      if (!when.ok()) return when.status();
      if (name == "since") *request.mutable_create_time_after() = *when;
      if (name == "until") *request.mutable_create_time_before() = *when;
      if (name == "ended_since") *request.mutable_end_time_after() = *when;
      if (name == "ended_until") *request.mutable_end_time_before() = *when;
    } else if (name == "page_size") {
      int32_t size = 0;
      if (!absl::SimpleAtoi(value, &size)) return BadParam(name, "want a number 1..1000");
      request.set_page_size(size);
    } else if (name == "page_token") {
      request.set_page_token(value);
    } else {
      return BadParam(absl::CEscape(name).substr(0, 64),
                      "unknown; want state, label, stage, error, since, until, ended_since, "
                      "ended_until, page_size or page_token");
    }
  }
  return request;
}

absl::StatusOr<std::string> ParseLoginBody(const std::string& body) {
  google::protobuf::Struct json;
  if (!google::protobuf::util::JsonStringToMessage(body, &json).ok()) {
    return absl::InvalidArgumentError("want a JSON body {\"token\": \"...\"}");
  }
  auto it = json.fields().find("token");
  if (it == json.fields().end() || !it->second.has_string_value()) {
    return absl::InvalidArgumentError("want a JSON body {\"token\": \"...\"}");
  }
  return it->second.string_value();
}

}  // namespace conveyor::orchestrator::dashboard
