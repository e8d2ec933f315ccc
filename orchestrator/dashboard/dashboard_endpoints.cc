#include "orchestrator/dashboard/dashboard_endpoints.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/image_header.h"
#include "common/stage_registry.h"
#include "orchestrator/chain_follow.h"
#include "orchestrator/chain_validator.h"
#include "orchestrator/dashboard/sse_frame.h"
#include "orchestrator/transition.h"

namespace conveyor::orchestrator::dashboard {
namespace {

// The chain list a stream sends when a page asks for no page_size.
constexpr int kStreamPageSize = 50;
// How often a waiting overview stream looks at its `cancelled`.
constexpr absl::Duration kCancelCheck = absl::Milliseconds(100);

HttpReply JsonReply(std::string body) {
  HttpReply reply;
  reply.body = std::move(body);
  return reply;
}

template <typename Message>
HttpReply MessageReply(const absl::StatusOr<Message>& message) {
  if (!message.ok()) return ErrorReply(message.status());
  return JsonReply(ToJson(*message));
}

// "name@version ..." of a list page, and its next page token.
std::string PageDigest(const conveyor::v1::ListChainsResponse& page) {
  std::string digest;
  for (const conveyor::v1::Chain& chain : page.chains()) {
    absl::StrAppend(&digest, chain.name(), "@", chain.version(), " ");
  }
  absl::StrAppend(&digest, page.next_page_token());
  return digest;
}

// The chain a stream of `id` after `last_event_id` follows, both checked as
// WatchChain checks them.
absl::StatusOr<std::string> WatchedChainId(const std::string& id,
                                           const std::string& last_event_id) {
  conveyor::v1::WatchChainRequest watch;
  watch.set_name(id);
  watch.set_after_event_id(last_event_id);
  return ChainApi::ParseWatchRequest(watch);
}

// Sends a keep-alive comment once `keep_alive` passed without a frame.
class KeepAlive {
 public:
  KeepAlive(const EmitFrame& emit, absl::Duration every, const Clock& clock)
      : emit_(emit), every_(every), clock_(clock), last_(clock.Now()) {}
  bool Emit(const std::string& frame) {
    last_ = clock_.Now();
    return emit_(frame);
  }
  // False when the client is gone.
  bool Tick() {
    if (clock_.Now() - last_ < every_) return true;
    return Emit(SseComment());
  }

 private:
  const EmitFrame& emit_;
  const absl::Duration every_;
  const Clock& clock_;
  absl::Time last_;
};

}  // namespace

HttpReply ErrorReply(const absl::Status& status) {
  HttpReply reply;
  reply.status = HttpStatusFor(status.code());
  reply.body = ErrorJson(status);
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    // RFC 6750: what a 401 asks for.
    reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"conveyor\"");
  }
  return reply;
}

absl::StatusOr<Caller> DashboardEndpoints::Authorize(const HttpRequest& request,
                                                     Scope needed) const {
  return dashboard::Authorize(authenticator_, request.credentials, needed);
}

HttpReply DashboardEndpoints::Login(const HttpRequest& request) const {
  if (absl::Status csrf = CheckCsrf(request.csrf_header, request.origin, request.host);
      !csrf.ok()) {
    return ErrorReply(csrf);
  }
  absl::StatusOr<std::string> token = ParseLoginBody(request.body);
  if (!token.ok()) return ErrorReply(token.status());
  if (absl::Status ok = CheckCookieToken(*token); !ok.ok()) return ErrorReply(ok);
  HttpCredentials credentials;
  credentials.authorization = {absl::StrCat("Bearer ", *token)};
  absl::StatusOr<Caller> caller = dashboard::Authorize(authenticator_, credentials, Scope::kRead);
  if (!caller.ok()) return ErrorReply(caller.status());
  HttpReply reply = JsonReply(CallerJson(*caller));
  reply.headers.emplace_back("Set-Cookie", SessionCookieHeader(*token, options_.secure_cookies));
  return reply;
}

HttpReply DashboardEndpoints::Logout(const HttpRequest& request) const {
  if (absl::Status csrf = CheckCsrf(request.csrf_header, request.origin, request.host);
      !csrf.ok()) {
    return ErrorReply(csrf);
  }
  HttpReply reply = JsonReply("{}");
  reply.headers.emplace_back("Set-Cookie", ClearedSessionCookieHeader(options_.secure_cookies));
  return reply;
}

HttpReply DashboardEndpoints::WhoAmI(const HttpRequest& request) const {
  absl::StatusOr<Caller> caller = Authorize(request, Scope::kRead);
  if (!caller.ok()) return ErrorReply(caller.status());
  return JsonReply(CallerJson(*caller));
}

HttpReply DashboardEndpoints::ListChains(const HttpRequest& request) const {
  absl::StatusOr<Caller> caller = Authorize(request, Scope::kRead);
  if (!caller.ok()) return ErrorReply(caller.status());
  absl::StatusOr<conveyor::v1::ListChainsRequest> query =
      ParseChainQuery(request.query, clock_.Now());
  if (!query.ok()) return ErrorReply(query.status());
  return MessageReply(api_.List(*caller, *query));
}

HttpReply DashboardEndpoints::GetChain(const HttpRequest& request, const std::string& id) const {
  absl::StatusOr<Caller> caller = Authorize(request, Scope::kRead);
  if (!caller.ok()) return ErrorReply(caller.status());
  return MessageReply(api_.Get(*caller, id));
}

HttpReply DashboardEndpoints::Act(const HttpRequest& request, const std::string& id,
                                  bool retry) const {
  if (absl::Status csrf = CheckCsrf(request.csrf_header, request.origin, request.host);
      !csrf.ok()) {
    return ErrorReply(csrf);
  }
  absl::StatusOr<Caller> caller = Authorize(request, Scope::kCancel);
  if (!caller.ok()) return ErrorReply(caller.status());
  return MessageReply(retry ? api_.Retry(*caller, id) : api_.Cancel(*caller, id));
}

HttpReply DashboardEndpoints::CancelChain(const HttpRequest& request, const std::string& id) const {
  return Act(request, id, /*retry=*/false);
}

HttpReply DashboardEndpoints::RetryChain(const HttpRequest& request, const std::string& id) const {
  return Act(request, id, /*retry=*/true);
}

HttpReply DashboardEndpoints::Status(const HttpRequest& request) const {
  absl::StatusOr<Caller> caller = Authorize(request, Scope::kRead);
  if (!caller.ok()) return ErrorReply(caller.status());
  return JsonReply(StatusHistoryJson(history_.Samples(), *caller));
}

HttpReply DashboardEndpoints::StepImage(const HttpRequest& request, const std::string& id,
                                        const std::string& step) const {
  absl::StatusOr<Caller> caller = Authorize(request, Scope::kRead);
  if (!caller.ok()) return ErrorReply(caller.status());
  absl::StatusOr<std::string> chain_id = ChainApi::ParseChainName(id);
  if (!chain_id.ok()) return ErrorReply(chain_id.status());
  int index = -1;
  if (!absl::SimpleAtoi(step, &index) || index < 0 || index >= kMaxSteps) {
    return ErrorReply(
        absl::InvalidArgumentError(absl::StrCat("step: want a step index 0..", kMaxSteps - 1)));
  }
  // Blob k+1 holds step k's output image (redis_keys.h).
  absl::StatusOr<std::pair<StoredChain, absl::optional<std::string>>> loaded =
      store_.LoadWithBlob(*chain_id, index + 1);
  if (!loaded.ok()) return ErrorReply(ChainApi::PublicStoreError(loaded.status()));
  const conveyor::v1::Chain& chain = loaded->first.chain;
  // Another tenant's chain is not found, in the same words as LoadForCaller.
  if (!caller->Sees(chain.tenant())) {
    return ErrorReply(LoadForCaller(store_, *caller, *chain_id).status());
  }
  if (index >= chain.steps_size() || !chain.steps(index).output().has_image()) {
    return ErrorReply(absl::NotFoundError(
        absl::StrCat("step ", index, " of ", chain.name(), " produced no image")));
  }
  if (!loaded->second.has_value()) {
    return ErrorReply(absl::NotFoundError(absl::StrCat(
        "the image of step ", index,
        " is no longer kept (a SUCCEEDED chain's images are "
        "deleted when it ends; a FAILED or CANCELLED chain's after --failed-blob-retention)")));
  }
  const std::string& bytes = *loaded->second;
  if (bytes.size() > kMaxThumbnailSourceBytes) {
    return ErrorReply(absl::NotFoundError(
        absl::StrCat("the image of step ", index, " is ", bytes.size(),
                     " bytes, over the thumbnail limit ", kMaxThumbnailSourceBytes)));
  }
  // The type the bytes are, not one a worker said: only JPEG, PNG or WebP
  // is ever served as an image (with nosniff, set by the server for all).
  absl::StatusOr<ImageHeader> header = ParseImageHeader(bytes);
  if (!header.ok()) return ErrorReply(absl::NotFoundError("the stored output is not an image"));
  HttpReply reply;
  reply.content_type = std::string(MediaTypeOf(header->kind));
  reply.body = bytes;
  reply.headers.emplace_back("Cache-Control", "private, max-age=60");
  return reply;
}

absl::StatusOr<Caller> DashboardEndpoints::ChainStreamCaller(const HttpRequest& request,
                                                             const std::string& id) const {
  absl::StatusOr<Caller> caller = Authorize(request, Scope::kRead);
  if (!caller.ok()) return caller;
  absl::StatusOr<std::string> chain_id = WatchedChainId(id, request.last_event_id);
  if (!chain_id.ok()) return chain_id.status();
  if (absl::Status seen = api_.Get(*caller, *chain_id).status(); !seen.ok()) return seen;
  return caller;
}

absl::StatusOr<Caller> DashboardEndpoints::OverviewStreamCaller(const HttpRequest& request) const {
  absl::StatusOr<Caller> caller = Authorize(request, Scope::kRead);
  if (!caller.ok()) return caller;
  if (absl::Status query = ParseChainQuery(request.query, clock_.Now()).status(); !query.ok()) {
    return query;
  }
  return caller;
}

absl::Status DashboardEndpoints::StreamChain(const Caller& caller, const std::string& id,
                                             const std::string& last_event_id,
                                             const EmitFrame& emit,
                                             const StreamCancelled& cancelled) const {
  absl::StatusOr<std::string> chain_id = WatchedChainId(id, last_event_id);
  if (!chain_id.ok()) return chain_id.status();
  absl::StatusOr<conveyor::v1::Chain> chain = api_.Get(caller, *chain_id);
  if (!chain.ok()) return chain.status();
  KeepAlive out(emit, options_.keep_alive, clock_);
  if (!out.Emit(SseFrame("chain", ToJson(*chain)))) return absl::CancelledError("client gone");
  bool gone = false;
  absl::Status followed = FollowChain(
      store_, *chain_id, last_event_id,
      [&](conveyor::v1::ChainEvent& event) {
        if (!out.Emit(SseFrame("step-event", ToJson(event), event.event_id()))) return false;
        // The chain as this event left it (or later), so the page draws
        // one consistent record instead of replaying events itself.
        absl::StatusOr<conveyor::v1::Chain> now = api_.Get(caller, *chain_id);
        if (!now.ok()) return out.Emit(SseFrame("error", ErrorJson(now.status())));
        return out.Emit(SseFrame("chain", ToJson(*now)));
      },
      [&] {
        if (cancelled() || !out.Tick()) gone = true;
        return gone;
      });
  if (followed.ok()) out.Emit(SseFrame("end", "{}"));
  return followed;
}

absl::Status DashboardEndpoints::StreamOverview(const Caller& caller, const QueryParams& query,
                                                const EmitFrame& emit,
                                                const StreamCancelled& cancelled) const {
  absl::StatusOr<conveyor::v1::ListChainsRequest> request = ParseChainQuery(query, clock_.Now());
  if (!request.ok()) return request.status();
  if (request->page_size() == 0) request->set_page_size(kStreamPageSize);
  // "since=1h" is relative: re-read against the time of each refresh.
  bool relative = false;
  for (const char* name : {"since", "until", "ended_since", "ended_until"}) {
    relative = relative || query.count(name) > 0;
  }
  KeepAlive out(emit, options_.keep_alive, clock_);
  std::string last_digest;
  int64_t seen_samples = 0;
  while (!cancelled()) {
    if (relative) {
      absl::StatusOr<conveyor::v1::ListChainsRequest> again = ParseChainQuery(query, clock_.Now());
      if (again.ok()) {
        again->set_page_size(request->page_size());
        *request = *std::move(again);
      }
    }
    absl::StatusOr<conveyor::v1::ListChainsResponse> page = api_.List(caller, *request);
    // What changed is told by names and versions (every transition bumps a
    // chain's version), not by the JSON, whose maps print in no fixed order.
    std::string digest = page.ok() ? PageDigest(*page) : page.status().ToString();
    if (digest != last_digest) {
      if (!out.Emit(page.ok() ? SseFrame("chains", ToJson(*page))
                              : SseFrame("error", ErrorJson(page.status())))) {
        break;
      }
      last_digest = std::move(digest);
    }
    int64_t added = 0;
    std::vector<StatusSample> fresh = history_.SamplesAfter(seen_samples, &added);
    if (!fresh.empty()) {
      if (!out.Emit(SseFrame("status", StatusHistoryJson(fresh, caller)))) break;
    }
    seen_samples = added;
    if (!out.Tick()) break;
    // Polled here, on the server, because the store has no feed of every
    // chain's changes (each chain has its own event stream): one index
    // page per open page per refresh, bounded by the stream limit.
    // In slices, so a stream ends soon after its client or the server goes.
    for (absl::Duration slept; slept < options_.list_refresh && !cancelled();
         slept += kCancelCheck) {
      absl::SleepFor(std::min(kCancelCheck, options_.list_refresh - slept));
    }
  }
  return absl::CancelledError("stream ended");
}

}  // namespace conveyor::orchestrator::dashboard
