#include "orchestrator/auth/scope_check.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace conveyor::orchestrator::auth {
namespace {

constexpr Scope kEveryScope[] = {Scope::kSubmit, Scope::kRead, Scope::kCancel, Scope::kAdmin};

}  // namespace

absl::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kSubmit:
      return "chains.submit";
    case Scope::kRead:
      return "chains.read";
    case Scope::kCancel:
      return "chains.cancel";
    case Scope::kAdmin:
      return "admin";
  }
  return "unknown";
}

absl::StatusOr<Scope> ParseScope(absl::string_view name) {
  for (Scope scope : kEveryScope) {
    if (name == ScopeName(scope)) return scope;
  }
  // A scope name is the caller's text, but short and not secret: shown so
  // the typo is found, cut so a huge one does not make a huge message.
  return absl::InvalidArgumentError(absl::StrCat("unknown scope \"", name.substr(0, 64),
                                                 "\"; want ", DescribeScopes(Scopes::All())));
}

absl::StatusOr<Scopes> ParseScopeList(absl::string_view list, char separator) {
  Scopes scopes;
  for (absl::string_view name : absl::StrSplit(list, separator)) {
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("empty scope name in \"", list.substr(0, 128), "\""));
    }
    absl::StatusOr<Scope> scope = ParseScope(name);
    if (!scope.ok()) return scope.status();
    scopes.Add(*scope);
  }
  return scopes;
}

Scopes KnownScopes(absl::string_view names, char separator) {
  Scopes scopes;
  for (absl::string_view name : absl::StrSplit(names, separator, absl::SkipEmpty())) {
    if (absl::StatusOr<Scope> scope = ParseScope(name); scope.ok()) scopes.Add(*scope);
  }
  return scopes;
}

std::string DescribeScopes(Scopes scopes) {
  std::vector<absl::string_view> names;
  for (Scope scope : kEveryScope) {
    if (scopes.Has(scope)) names.push_back(ScopeName(scope));
  }
  return names.empty() ? "no scope" : absl::StrJoin(names, ",");
}

absl::Status CheckScope(const Caller& caller, Scope needed) {
  if (caller.Has(needed)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("this call needs scope \"", ScopeName(needed),
                                                  "\"; principal \"", caller.principal, "\" has ",
                                                  DescribeScopes(caller.scopes)));
}

}  // namespace conveyor::orchestrator::auth
