#include "common/step_context.h"

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "common/status_details.h"

namespace conveyor {

absl::StatusOr<std::string> ChainIdOfContext(const v1::StepContext& context) {
  const std::string& chain = context.chain();
  if (chain.empty()) return std::string();
  constexpr absl::string_view kPrefix = "chains/";
  absl::string_view id = chain;
  bool valid = absl::ConsumePrefix(&id, kPrefix) && !id.empty() && id.size() <= kMaxChainIdBytes;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      valid = false;
      break;
    }
  }
  if (!valid) {
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
