#include "client/new_token.h"

#include <openssl/rand.h>

#include <algorithm>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"

namespace conveyor::client {
namespace {

constexpr size_t kMaxPrincipalBytes = 256;

// A field of the whitespace-separated tokens file: non-empty, printable
// ASCII, no spaces.
absl::Status CheckField(absl::string_view flag, absl::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, ": must not be empty"));
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": want printable ASCII without spaces (the tokens file's separator), got \"",
          absl::CEscape(value), "\""));
    }
  }
  return absl::OkStatus();
}

// The orchestrator's principal rule: a tokens-file field that goes into log
// lines and the chains' audit trail, so no quotes or backslashes either.
absl::Status CheckPrincipal(absl::string_view principal) {
  if (absl::Status field = CheckField("--principal", principal); !field.ok()) return field;
  if (principal.size() > kMaxPrincipalBytes ||
      principal.find_first_of("\"\\") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--principal: want 1..", kMaxPrincipalBytes,
                     " printable characters without spaces, quotes or backslashes, got \"",
                     absl::CEscape(principal.substr(0, 64)), "\""));
  }
  return absl::OkStatus();
}

// The orchestrator's tenant rule (docs/orchestrator.md, "Tenants"), or `*`,
// an operator of every tenant.
absl::Status CheckTenant(absl::string_view tenant) {
  if (tenant == "*") return absl::OkStatus();
  const bool valid = !tenant.empty() && tenant.size() <= 64 &&
                     std::all_of(tenant.begin(), tenant.end(), [](char c) {
                       return absl::ascii_isalnum(c) || c == '-' || c == '_';
                     });
  if (valid) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "--tenant: want 1..64 letters, digits, '-' or '_' (or * for every tenant), got \"",
      absl::CEscape(tenant), "\""));
}

absl::Status CheckScopes(absl::string_view scopes) {
  if (absl::Status field = CheckField("--scopes", scopes); !field.ok()) return field;
  std::set<absl::string_view> seen;
  for (absl::string_view scope : absl::StrSplit(scopes, ',')) {
    if (std::find(std::begin(kTokenScopes), std::end(kTokenScopes), scope) ==
        std::end(kTokenScopes)) {
      return absl::InvalidArgumentError(absl::StrCat("--scopes: want a comma-separated list of ",
                                                     absl::StrJoin(kTokenScopes, ", "), "; got \"",
                                                     scope, "\""));
    }
    if (!seen.insert(scope).second) {
      return absl::InvalidArgumentError(absl::StrCat("--scopes: \"", scope, "\" given twice"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> NewToken() {
  unsigned char bytes[kNewTokenBytes];
  if (RAND_bytes(bytes, kNewTokenBytes) != 1) {
    return absl::InternalError("OpenSSL's random generator failed; no token was made");
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

absl::StatusOr<std::string> TokensFileLine(absl::string_view token, const TokenOwner& owner) {
  if (absl::Status s = CheckPrincipal(owner.principal); !s.ok()) return s;
  if (absl::Status s = CheckTenant(owner.tenant); !s.ok()) return s;
  if (absl::Status s = CheckScopes(owner.scopes); !s.ok()) return s;
  return absl::StrCat("sha256:", Sha256Hex(token), " ", owner.principal, " ", owner.tenant, " ",
                      owner.scopes);
}

}  // namespace conveyor::client
