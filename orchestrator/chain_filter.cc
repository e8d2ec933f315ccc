#include "orchestrator/chain_filter.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "orchestrator/chain_validator.h"
#include "orchestrator/clock.h"
#include "orchestrator/transition.h"
#include "common/status_details.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;

namespace {

constexpr size_t kMaxErrorReasonChars = 128;

bool ValidReason(absl::string_view reason) {
  if (reason.empty() || reason.size() > kMaxErrorReasonChars) return false;
  for (char c : reason) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

// The fields ListChainsRequest and ChainFilter share, by value.
struct FilterFields {
  conveyor::v1::State state;
  const google::protobuf::Map<std::string, std::string>* labels;
  conveyor::v1::StageKind stage;
  const std::string* error_reason;
  const google::protobuf::Timestamp* create_after;  // null = unset
  const google::protobuf::Timestamp* create_before;
  const google::protobuf::Timestamp* end_after;
  const google::protobuf::Timestamp* end_before;
};

absl::Status CheckTime(const std::string& field, const google::protobuf::Timestamp* ts) {
  return ts == nullptr ? absl::OkStatus() : ValidateTimestamp(field, *ts);
}

absl::StatusOr<ListQuery> Convert(const FilterFields& f, const std::string& prefix) {
  if (!conveyor::v1::State_IsValid(f.state)) {
    return InvalidField(prefix + "state", absl::StrCat("unknown state ", f.state));
  }
  // Label keys and values become Redis index keys: the spec's label rules.
  if (absl::Status s = ValidateLabels(prefix + "labels", *f.labels); !s.ok()) return s;
  if (!conveyor::v1::StageKind_IsValid(f.stage)) {
    return InvalidField(prefix + "stage", absl::StrCat("unknown stage kind ", f.stage));
  }
  if (!f.error_reason->empty() && !ValidReason(*f.error_reason)) {
    return InvalidField(prefix + "error_reason",
                        absl::StrCat("want up to ", kMaxErrorReasonChars,
                                     " chars of [A-Za-z0-9_.-] (e.g. UNAVAILABLE), got \"",
                                     absl::CHexEscape(*f.error_reason), "\""));
  }
  for (const auto& [name, ts] :
       {std::pair{"create_time_after", f.create_after}, {"create_time_before", f.create_before},
        {"end_time_after", f.end_after}, {"end_time_before", f.end_before}}) {
    if (absl::Status s = CheckTime(prefix + name, ts); !s.ok()) return s;
  }
  ListQuery q;
  q.state = f.state;
  for (const auto& [k, v] : *f.labels) q.labels[k] = v;
  q.stage = f.stage;
  q.error_reason = *f.error_reason;
  if (f.create_after != nullptr) q.created_after = FromProtoTime(*f.create_after);
  if (f.create_before != nullptr) q.created_before = FromProtoTime(*f.create_before);
  if (f.end_after != nullptr) q.ended_after = FromProtoTime(*f.end_after);
  if (f.end_before != nullptr) q.ended_before = FromProtoTime(*f.end_before);
  return q;
}

}  // namespace

conveyor::v1::StageKind CurrentStage(const Chain& chain) {
  const int step = FirstUnfinishedStep(chain);
  if (step >= chain.steps_size()) return conveyor::v1::STAGE_KIND_UNSPECIFIED;
  return chain.steps(step).kind();
}

std::string ChainErrorReason(const Chain& chain) {
  if (!chain.has_error() || chain.error().code() == 0) return "";
  std::string reason = ErrorReason(FromRpcStatus(chain.error()));
  if (reason.empty()) {
    const int step = FirstUnfinishedStep(chain);
    if (step < chain.steps_size() && chain.steps(step).has_error()) {
      reason = ErrorReason(FromRpcStatus(chain.steps(step).error()));
    }
  }
  if (reason.empty()) {
    reason = absl::StatusCodeToString(static_cast<absl::StatusCode>(chain.error().code()));
  }
  return reason;
}

bool ChainMatches(const ListQuery& q, const Chain& chain) {
  if (!q.tenant.empty() && ChainTenant(chain) != q.tenant) return false;
  if (q.state != conveyor::v1::STATE_UNSPECIFIED && chain.state() != q.state) return false;
  for (const auto& [k, v] : q.labels) {
    auto it = chain.spec().labels().find(k);
    if (it == chain.spec().labels().end() || it->second != v) return false;
  }
  if (q.created_after.has_value() || q.created_before.has_value()) {
    const absl::Time created = FromProtoTime(chain.create_time());
    if (q.created_after.has_value() && created < *q.created_after) return false;
    if (q.created_before.has_value() && created >= *q.created_before) return false;
  }
  if (q.ended_after.has_value() || q.ended_before.has_value()) {
    if (!chain.has_end_time()) return false;
    const absl::Time ended = FromProtoTime(chain.end_time());
    if (q.ended_after.has_value() && ended < *q.ended_after) return false;
    if (q.ended_before.has_value() && ended >= *q.ended_before) return false;
  }
  if (q.stage != conveyor::v1::STAGE_KIND_UNSPECIFIED && CurrentStage(chain) != q.stage) {
    return false;
  }
  if (!q.error_reason.empty() && !absl::EqualsIgnoreCase(ChainErrorReason(chain), q.error_reason)) {
    return false;
  }
  return true;
}

absl::StatusOr<ListQuery> ListQueryFromRequest(const conveyor::v1::ListChainsRequest& r) {
  if (r.page_size() < 0 || r.page_size() > 1000) {
    return InvalidField("page_size", absl::StrCat("want 1..1000 (0 = 50), got ", r.page_size()));
  }
  absl::StatusOr<ListQuery> q = Convert(
      {r.state(), &r.labels(), r.stage(), &r.error_reason(),
       r.has_create_time_after() ? &r.create_time_after() : nullptr,
       r.has_create_time_before() ? &r.create_time_before() : nullptr,
       r.has_end_time_after() ? &r.end_time_after() : nullptr,
       r.has_end_time_before() ? &r.end_time_before() : nullptr},
      "");
  if (!q.ok()) return q.status();
  q->page_size = r.page_size() == 0 ? 50 : r.page_size();
  q->page_token = r.page_token();
  return q;
}

absl::StatusOr<ListQuery> ListQueryFromFilter(const conveyor::v1::ChainFilter& f) {
  if (f.state() == conveyor::v1::STATE_UNSPECIFIED && f.labels().empty() &&
      f.stage() == conveyor::v1::STAGE_KIND_UNSPECIFIED && f.error_reason().empty() &&
      !f.has_create_time_after() && !f.has_create_time_before() && !f.has_end_time_after() &&
      !f.has_end_time_before()) {
    return InvalidField("filter",
                        "empty: it would select every chain; set at least one of state, labels, "
                        "stage, error_reason or a time range");
  }
  return Convert({f.state(), &f.labels(), f.stage(), &f.error_reason(),
                  f.has_create_time_after() ? &f.create_time_after() : nullptr,
                  f.has_create_time_before() ? &f.create_time_before() : nullptr,
                  f.has_end_time_after() ? &f.end_time_after() : nullptr,
                  f.has_end_time_before() ? &f.end_time_before() : nullptr},
                 "filter.");
}

}  // namespace conveyor::orchestrator
