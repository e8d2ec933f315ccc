// The dashboard's JSON and its list filters, apart from HTTP: messages in
// protobuf's JSON mapping (the names `grpcurl` and `conveyor ... --json`
// show), errors as {"code", "message"}, and the chain filters of a page's
// query string turned into a ListChainsRequest. Pure functions,
// thread-safe.
#ifndef CONVEYOR_ORCHESTRATOR_DASHBOARD_DASHBOARD_JSON_H_
#define CONVEYOR_ORCHESTRATOR_DASHBOARD_DASHBOARD_JSON_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "google/protobuf/message.h"
#include "orchestrator/caller.h"

namespace conveyor::orchestrator::dashboard {

// A query string's parameters, decoded; a name may repeat (label=).
using QueryParams = std::multimap<std::string, std::string>;

// `message` in protobuf's JSON mapping, lowerCamelCase names, enums by
// name, fields at their default value included (step 0's `index`, 0
// attempts), so the page never has to guess a missing field.
std::string ToJson(const google::protobuf::Message& message);

// {"code":"PERMISSION_DENIED","message":"..."}, escaped as JSON.
std::string ErrorJson(const absl::Status& status);

// {"principal":..., "tenant":..., "scopes":["chains.read", ...]}.
std::string CallerJson(const Caller& caller);

// The chain list's filters as ListChainsRequest fields (ChainApi::List
// checks their limits):
//   state=FAILED            a State name (any case)
//   label=key=value         repeatable; every one must match
//   stage=resize            the stage of the chain's current/failed step
//   error=UNAVAILABLE       the error's reason or code name
//   since=1h | until=30m    created at most this long ago / at least; or an
//                           RFC 3339 time (2026-12-03T10:00:00Z)
//   ended_since, ended_until  the same for the time the chain ended
//   page_size=50, page_token=...
// Empty values are no filter. INVALID_ARGUMENT naming the parameter for a
// bad value or an unknown parameter (a typo would silently show everything).
absl::StatusOr<conveyor::v1::ListChainsRequest> ParseChainQuery(const QueryParams& params,
                                                                absl::Time now);

// The token a login form posts: {"token": "..."}. INVALID_ARGUMENT if the
// body is not that JSON (the token itself is never in the message).
absl::StatusOr<std::string> ParseLoginBody(const std::string& body);

}  // namespace conveyor::orchestrator::dashboard

#endif  // CONVEYOR_ORCHESTRATOR_DASHBOARD_DASHBOARD_JSON_H_
