// What each dashboard URL does, apart from HTTP: a request's headers, query
// and body in, status, type, headers and body out; the two live streams as
// loops that hand server-sent-event frames to a callback. The HTTP adapter
// (dashboard_server.h) only copies requests and replies in and out.
//
// Every call authenticates as the gRPC API does (http_access.h) and goes
// through the same in-process ChainApi, so tenants and scopes decide alike:
// reads need chains.read, retry and cancel chains.cancel; another tenant's
// chain is 404 as an unknown one. Blocking (Redis); thread-safe.
#ifndef CONVEYOR_ORCHESTRATOR_DASHBOARD_DASHBOARD_ENDPOINTS_H_
#define CONVEYOR_ORCHESTRATOR_DASHBOARD_DASHBOARD_ENDPOINTS_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/auth/authenticator.h"
#include "orchestrator/chain_api.h"
#include "orchestrator/chain_store.h"
#include "orchestrator/clock.h"
#include "orchestrator/dashboard/dashboard_json.h"
#include "orchestrator/dashboard/http_access.h"
#include "orchestrator/dashboard/status_history.h"

namespace conveyor::orchestrator::dashboard {

struct HttpRequest {
  HttpCredentials credentials;
  QueryParams query;
  std::string body;
  std::string csrf_header;    // X-Conveyor-Dashboard
  std::string origin;         // Origin
  std::string host;           // Host
  std::string last_event_id;  // Last-Event-ID (an EventSource reconnecting)
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// The JSON error reply for `status` (HttpStatusFor's code).
HttpReply ErrorReply(const absl::Status& status);

// Biggest step image served as a thumbnail; bigger ones are 404 with a note
// (the browser would scale megabytes down to 160 pixels).
inline constexpr size_t kMaxThumbnailSourceBytes = 16 << 20;

struct DashboardEndpointOptions {
  // Set-Cookie gets Secure: the dashboard is served over TLS.
  bool secure_cookies = false;
  // How often a chain-list stream re-reads its page, and how often it sends
  // a keep-alive comment while nothing changes.
  absl::Duration list_refresh = absl::Seconds(1);
  absl::Duration keep_alive = absl::Seconds(15);
};

// Called with each frame of a stream; false when the client is gone.
using EmitFrame = std::function<bool(const std::string& frame)>;
// Polled between reads of the store: true once the stream must end
// (client gone, server stopping).
using StreamCancelled = std::function<bool()>;

class DashboardEndpoints {
 public:
  // Each reference must outlive this object.
  DashboardEndpoints(ChainApi& api, ChainStore& store, const auth::Authenticator& authenticator,
                     const StatusHistory& history, const Clock& clock,
                     DashboardEndpointOptions options)
      : api_(api),
        store_(store),
        authenticator_(authenticator),
        history_(history),
        clock_(clock),
        options_(options) {}

  // POST /api/login {"token": ...}: checks the token as a caller with
  // chains.read and sets the session cookie; 401/403 otherwise.
  HttpReply Login(const HttpRequest& request) const;
  // POST /api/logout: clears the cookie.
  HttpReply Logout(const HttpRequest& request) const;
  // GET /api/whoami: the caller (CallerJson).
  HttpReply WhoAmI(const HttpRequest& request) const;
  // GET /api/chains?<ParseChainQuery filters>: a ListChainsResponse.
  HttpReply ListChains(const HttpRequest& request) const;
  // GET /api/chains/<id>: the Chain.
  HttpReply GetChain(const HttpRequest& request, const std::string& id) const;
  // POST /api/chains/<id>/cancel, /retry: the Chain after the action.
  HttpReply CancelChain(const HttpRequest& request, const std::string& id) const;
  HttpReply RetryChain(const HttpRequest& request, const std::string& id) const;
  // GET /api/status: StatusHistoryJson for the caller.
  HttpReply Status(const HttpRequest& request) const;
  // GET /api/chains/<id>/steps/<k>/image: the image step k produced, while
  // the store still keeps it (a running chain's, a FAILED/CANCELLED one's
  // for --failed-blob-retention; a SUCCEEDED chain's images are deleted
  // when it ends), with its sniffed media type; 404 otherwise.
  HttpReply StepImage(const HttpRequest& request, const std::string& id,
                      const std::string& step) const;

  // Who may open a stream (chains.read), after the checks a stream would
  // otherwise fail on before its first frame, so that they are an HTTP
  // error instead: the chain must be the caller's and `last_event_id` a
  // valid cursor; the overview's filters must parse.
  absl::StatusOr<Caller> ChainStreamCaller(const HttpRequest& request, const std::string& id) const;
  absl::StatusOr<Caller> OverviewStreamCaller(const HttpRequest& request) const;
  // GET /api/chains/<id>/events: frames "chain" (the Chain, first and after
  // each event), "step-event" (each ChainEvent, id = its event id, so an
  // EventSource that reconnects resumes after `last_event_id`) and "end"
  // once the chain reached a terminal state. Returns the stream's status
  // (NOT_FOUND for an unknown or another tenant's chain, before any frame).
  absl::Status StreamChain(const Caller& caller, const std::string& id,
                           const std::string& last_event_id, const EmitFrame& emit,
                           const StreamCancelled& cancelled) const;
  // GET /api/stream?<filters>: "chains" (the first page of the list) when
  // it changes, "status" (StatusHistoryJson) when a sample is added.
  // INVALID_ARGUMENT for bad filters, before any frame.
  absl::Status StreamOverview(const Caller& caller, const QueryParams& query, const EmitFrame& emit,
                              const StreamCancelled& cancelled) const;

 private:
  absl::StatusOr<Caller> Authorize(const HttpRequest& request, Scope needed) const;
  // Cancel or Retry, after the CSRF check.
  HttpReply Act(const HttpRequest& request, const std::string& id, bool retry) const;

  ChainApi& api_;
  ChainStore& store_;
  const auth::Authenticator& authenticator_;
  const StatusHistory& history_;
  const Clock& clock_;
  const DashboardEndpointOptions options_;
};

}  // namespace conveyor::orchestrator::dashboard

#endif  // CONVEYOR_ORCHESTRATOR_DASHBOARD_DASHBOARD_ENDPOINTS_H_
