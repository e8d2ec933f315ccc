#include "orchestrator/auth/authenticator.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "orchestrator/auth/scope_check.h"

namespace conveyor::orchestrator::auth {
namespace {

constexpr absl::string_view kBearerHint =
    "send the header \"authorization: Bearer <token>\" (docs/security.md, \"Caller identity\")";

// The token of "Bearer <token>"; UNAUTHENTICATED without echoing the value.
absl::StatusOr<absl::string_view> BearerToken(absl::string_view header) {
  absl::string_view value = absl::StripAsciiWhitespace(header);
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        absl::StrCat("malformed authorization header: want \"Bearer <token>\"; ", kBearerHint));
  }
  absl::string_view token = absl::StripLeadingAsciiWhitespace(value.substr(kScheme.size()));
  for (char c : token) {
    if (c <= ' ' || c > '~') {
      return absl::UnauthenticatedError(
          "malformed authorization header: the token has a space or a non-printable character");
    }
  }
  if (token.empty()) return absl::UnauthenticatedError("malformed authorization header: no token");
  return token;
}

}  // namespace

Caller AnonymousCaller(Scopes scopes) {
  return Caller{"anonymous", std::string(kDefaultTenant), scopes};
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(const AuthOptions& options,
                                                                     const Clock& clock) {
  if (options.tokens_file.empty() && options.jwt_keys_file.empty() && !options.allow_anonymous) {
    return absl::InvalidArgumentError(
        "no caller authentication: pass --tokens-file, --jwt-keys (with --jwt-issuer and "
        "--jwt-audience) or --allow-anonymous (docs/security.md, \"Caller identity\")");
  }
  const bool jwt = !options.jwt_keys_file.empty();
  if (jwt && (options.jwt_issuer.empty() || options.jwt_audience.empty())) {
    return absl::InvalidArgumentError(
        "--jwt-keys needs --jwt-issuer and --jwt-audience: a JWT is only accepted for this "
        "issuer and this audience");
  }
  if (!jwt && (!options.jwt_issuer.empty() || !options.jwt_audience.empty())) {
    return absl::InvalidArgumentError("--jwt-issuer and --jwt-audience need --jwt-keys");
  }
  std::unique_ptr<Authenticator> authenticator(new Authenticator(options, clock));
  if (!options.tokens_file.empty()) {
    absl::StatusOr<std::unique_ptr<ReloadingFile<TokenTable>>> tokens =
        ReloadingFile<TokenTable>::Load("tokens file", options.tokens_file, ReadTokensFile, clock,
                                        options.reload_interval);
    if (!tokens.ok()) {
      return absl::Status(tokens.status().code(),
                          absl::StrCat("--tokens-file: ", tokens.status().message()));
    }
    authenticator->tokens_ = *std::move(tokens);
  }
  if (jwt) {
    absl::StatusOr<std::unique_ptr<ReloadingFile<JwtKeySet>>> keys = ReloadingFile<JwtKeySet>::Load(
        "JWT keys file", options.jwt_keys_file, ReadJwtKeys, clock, options.reload_interval);
    if (!keys.ok()) {
      return absl::Status(keys.status().code(),
                          absl::StrCat("--jwt-keys: ", keys.status().message()));
    }
    authenticator->jwt_keys_ = *std::move(keys);
    authenticator->jwt_policy_ = {options.jwt_issuer, options.jwt_audience, options.jwt_leeway};
  }
  return authenticator;
}

absl::StatusOr<Caller> Authenticator::FromToken(absl::string_view token) const {
  if (jwt_keys_ != nullptr && LooksLikeJwt(token)) {
    return VerifyJwt(token, *jwt_keys_->Get(), jwt_policy_, clock_.Now());
  }
  if (tokens_ == nullptr) {
    return absl::UnauthenticatedError(
        "the bearer token is not a JWT (three dot-separated parts), and this server takes only "
        "JWTs (no --tokens-file)");
  }
  std::optional<Caller> caller = tokens_->Get()->FindToken(token);
  if (!caller.has_value()) {
    return absl::UnauthenticatedError(
        jwt_keys_ == nullptr ? "unknown bearer token: it is not in --tokens-file"
                             : "unknown bearer token: not a JWT, and not in --tokens-file");
  }
  return *std::move(caller);
}

absl::StatusOr<Caller> Authenticator::Authenticate(const Credentials& credentials) const {
  if (credentials.authorization.size() > 1) {
    return absl::UnauthenticatedError(
        "malformed request: more than one authorization header; send one");
  }
  if (credentials.authorization.size() == 1) {
    absl::StatusOr<absl::string_view> token = BearerToken(credentials.authorization[0]);
    if (!token.ok()) return token.status();
    return FromToken(*token);
  }
  if (tokens_ != nullptr && !credentials.peer_identities.empty()) {
    std::optional<Caller> caller = tokens_->Get()->FindCertificate(credentials.peer_identities);
    if (caller.has_value()) return *std::move(caller);
  }
  if (options_.allow_anonymous) return AnonymousCaller(options_.anonymous_scopes);
  if (!credentials.peer_identities.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "no bearer token, and no cert: line of --tokens-file lists the client certificate (",
        absl::StrJoin(credentials.peer_identities, ", ").substr(0, 256), "); ", kBearerHint));
  }
  return absl::UnauthenticatedError(absl::StrCat("no credentials: ", kBearerHint));
}

std::string Authenticator::Describe() const {
  std::vector<std::string> sources;
  if (tokens_ != nullptr) {
    std::shared_ptr<const TokenTable> table = tokens_->Get();
    sources.push_back(absl::StrCat("tokens-file(", table->token_count(), " tokens, ",
                                   table->certificate_count(), " certs)"));
  }
  if (jwt_keys_ != nullptr) {
    sources.push_back(absl::StrCat("jwt(", jwt_keys_->Get()->keys.size(), " keys)"));
  }
  if (options_.allow_anonymous) {
    sources.push_back(absl::StrCat("anonymous(", DescribeScopes(options_.anonymous_scopes), ")"));
  }
  return absl::StrJoin(sources, " ");
}

bool Authenticator::has_certificate_lines() const {
  return tokens_ != nullptr && tokens_->Get()->certificate_count() > 0;
}

}  // namespace conveyor::orchestrator::auth
