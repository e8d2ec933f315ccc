#include "common/step_context.h"

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "common/status_details.h"

namespace conveyor {

namespace {

// 1..max_bytes of [A-Za-z0-9_-]: chain ids and tenant names.
bool IsSafeName(absl::string_view name, size_t max_bytes) {
  if (name.empty() || name.size() > max_bytes) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

}  // namespace

bool IsTenantName(absl::string_view tenant) { return IsSafeName(tenant, kMaxTenantBytes); }

absl::Status CheckStepContext(const v1::StepContext& context) {
  if (absl::StatusOr<std::string> id = ChainIdOfContext(context); !id.ok()) return id.status();
  if (!context.tenant().empty() && !IsTenantName(context.tenant())) {
    return WithErrorReason(
        InvalidField("context.tenant",
                     absl::StrCat("want a tenant name of 1..", kMaxTenantBytes,
                                  " letters, digits, '-' or '_', got ",
                                  QuoteForMessage(context.tenant(), 100))),
        kReasonInvalidTenantName);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ChainIdOfContext(const v1::StepContext& context) {
  const std::string& chain = context.chain();
  if (chain.empty()) return std::string();
  absl::string_view id = chain;
  if (!absl::ConsumePrefix(&id, "chains/") || !IsSafeName(id, kMaxChainIdBytes)) {
    return WithErrorReason(
        InvalidField("context.chain",
                     absl::StrCat("want \"chains/<id>\" with an id of 1..", kMaxChainIdBytes,
                                  " letters, digits, '-' or '_', got ",
                                  QuoteForMessage(chain, 100))),
        kReasonInvalidChainName);
  }
  return std::string(id);
}

}  // namespace conveyor
