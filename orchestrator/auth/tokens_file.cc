#include "orchestrator/auth/tokens_file.h"

#include <openssl/crypto.h>

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/secret_file.h"
#include "common/sha256.h"
#include "orchestrator/auth/scope_check.h"

namespace conveyor::orchestrator::auth {
namespace {

constexpr absl::string_view kDigestPrefix = "sha256:";
constexpr absl::string_view kCertPrefix = "cert:";
constexpr size_t kMaxPrincipalBytes = 256;
constexpr size_t kMaxIdentityBytes = 1024;

bool IsLowerHex(absl::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The digests of tokens anyone can guess: every placeholder this repository
// has shipped, and the empty token.
bool IsGuessableDigest(absl::string_view digest_hex) {
  if (digest_hex == Sha256Hex("")) return true;
  for (absl::string_view placeholder : PlaceholderSecrets()) {
    if (digest_hex == Sha256Hex(placeholder)) return true;
  }
  return false;
}

}  // namespace

bool IsPrincipalName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxPrincipalBytes) return false;
  for (char c : name) {
    if (c <= ' ' || c > '~' || c == '"' || c == '\\') return false;
  }
  return true;
}

std::optional<Caller> TokenTable::FindToken(absl::string_view token) const {
  const std::string digest = Sha256Hex(token);
  const TokenEntry* found = nullptr;
  for (const TokenEntry& entry : tokens_) {
    // Every entry is compared: no early exit on a match.
    if (CRYPTO_memcmp(entry.digest_hex.data(), digest.data(), digest.size()) == 0) found = &entry;
  }
  if (found == nullptr) return std::nullopt;
  return found->caller;
}

std::optional<Caller> TokenTable::FindCertificate(absl::Span<const std::string> identities) const {
  for (const std::string& identity : identities) {
    if (auto it = certificates_.find(identity); it != certificates_.end()) return it->second;
  }
  return std::nullopt;
}

absl::StatusOr<TokenTable> ParseTokensFile(absl::string_view text, absl::string_view path) {
  TokenTable table;
  // Credential -> the line that listed it first.
  absl::flat_hash_map<std::string, int> seen;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    const auto fail = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": ", why));
    };
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 4) {
      return fail(absl::StrCat("want \"<credential> <principal> <tenant> <scopes>\", got ",
                               fields.size(), " fields"));
    }
    const absl::string_view credential = fields[0];
    Caller caller;
    if (!IsPrincipalName(fields[1])) {
      return fail("principal: want 1..256 printable characters without spaces or quotes");
    }
    caller.principal = std::string(fields[1]);
    if (!IsTenantName(fields[2])) {
      return fail(absl::StrCat("tenant \"", fields[2].substr(0, 64),
                               "\": want 1..64 of [A-Za-z0-9_-], or * for every tenant"));
    }
    caller.tenant = std::string(fields[2]);
    absl::StatusOr<Scopes> scopes = ParseScopeList(fields[3]);
    if (!scopes.ok()) return fail(scopes.status().message());
    caller.scopes = *scopes;

    absl::string_view value = credential;
    if (absl::ConsumePrefix(&value, kDigestPrefix)) {
      if (value.size() != 64 || !IsLowerHex(value)) {
        // Never shown: a token pasted here by mistake would end up in logs.
        return fail(
            "sha256: want 64 lowercase hex digits, the SHA-256 of the token "
            "(printf %s \"$token\" | sha256sum)");
      }
      if (IsGuessableDigest(value)) {
        return fail(
            "the digest is of a placeholder or empty token, known to anyone; make a "
            "real one (openssl rand -hex 32)");
      }
      table.tokens_.push_back({std::string(value), std::move(caller)});
    } else if (absl::ConsumePrefix(&value, kCertPrefix)) {
      if (value.empty() || value.size() > kMaxIdentityBytes) {
        return fail("cert: want the certificate's SAN DNS or URI name or its CN after cert:");
      }
      table.certificates_.emplace(std::string(value), std::move(caller));
    } else {
      return fail("credential: want sha256:<hex digest of the token> or cert:<identity>");
    }
    auto [it, inserted] = seen.emplace(std::string(credential), line_number);
    if (!inserted) {
      return fail(absl::StrCat("the same credential is already on line ", it->second));
    }
  }
  if (table.tokens_.empty() && table.certificates_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     ": no credential (want lines \"sha256:<hex> <principal> <tenant> "
                     "<scopes>\" or \"cert:<identity> ...\")"));
  }
  return table;
}

absl::StatusOr<TokenTable> ReadTokensFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadSecretFileText(path);
  if (!text.ok()) return text.status();
  return ParseTokensFile(*text, path);
}

}  // namespace conveyor::orchestrator::auth
