#include "orchestrator/dashboard/dashboard_server.h"

#include <httplib.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/port_file.h"
#include "orchestrator/dashboard/sse_frame.h"
#include "orchestrator/dashboard/web_assets.h"

namespace conveyor::orchestrator::dashboard {
namespace {

// Only this server's own files, no inline script or style, no frames: what
// keeps an injected string inert even if escaping were missed somewhere.
constexpr char kContentSecurityPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

// The caller the sampler reads GetSystemStatus as: every detail, for
// ChainApi::RedactSystemStatus to cut down per reader.
Caller SamplerCaller() {
  return {"dashboard-sampler", std::string(kAllTenants),
          Scopes().Add(Scope::kRead).Add(Scope::kAdmin)};
}

HttpRequest FromHttplib(const httplib::Request& req) {
  HttpRequest out;
  const size_t n = req.get_header_value_count("Authorization");
  for (size_t i = 0; i < n; ++i) {
    out.credentials.authorization.push_back(req.get_header_value("Authorization", i));
  }
  out.credentials.cookie = req.get_header_value("Cookie");
  for (const auto& [name, value] : req.params) out.query.emplace(name, value);
  out.body = req.body;
  out.csrf_header = req.get_header_value(std::string(kCsrfHeader).c_str());
  out.origin = req.get_header_value("Origin");
  out.host = req.get_header_value("Host");
  out.last_event_id = req.get_header_value("Last-Event-ID");
  return out;
}

void ToHttplib(const HttpReply& reply, httplib::Response& res) {
  res.status = reply.status;
  for (const auto& [name, value] : reply.headers) res.set_header(name.c_str(), value);
  if (!res.has_header("Cache-Control")) res.set_header("Cache-Control", "no-store");
  res.set_content(reply.body, reply.content_type.c_str());
}

// host:port or [v6]:port.
absl::Status SplitListen(const std::string& listen, std::string& host, int& port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen: want host:port, got \"", listen, "\""));
  }
  host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return absl::OkStatus();
}

}  // namespace

DashboardServer::DashboardServer(ChainApi& api, ChainStore& store,
                                 const auth::Authenticator& authenticator, const Clock& clock,
                                 DashboardOptions options)
    : api_(api),
      clock_(clock),
      options_(options),
      history_(options.history_samples),
      endpoints_(api, store, authenticator, history_, clock, [&] {
        DashboardEndpointOptions e = options.endpoints;
        e.secure_cookies = !options.tls_cert_file.empty();
        return e;
      }()) {}

DashboardServer::~DashboardServer() { Stop(); }

std::string DashboardServer::url() const {
  const bool v6 = host_.find(':') != std::string::npos;
  return absl::StrCat(options_.tls_cert_file.empty() ? "http" : "https", "://", v6 ? "[" : "",
                      host_, v6 ? "]" : "", ":", port_, "/");
}

absl::Status DashboardServer::Start() {
  int port = 0;
  if (absl::Status s = SplitListen(options_.listen, host_, port); !s.ok()) return s;
  if (options_.tls_cert_file.empty() != options_.tls_key_file.empty()) {
    return absl::InvalidArgumentError("dashboard TLS needs both --tls-cert and --tls-key");
  }
  if (!options_.tls_cert_file.empty()) {
    // No client CA: browsers are not asked for certificates; callers are
    // identified by their token (docs/security.md, "Dashboard").
    auto https = std::make_unique<httplib::SSLServer>(options_.tls_cert_file.c_str(),
                                                      options_.tls_key_file.c_str());
    if (!https->is_valid()) {
      return absl::InvalidArgumentError(
          "--http-listen: the TLS certificate or key (--tls-cert, --tls-key) does not load");
    }
    http_ = std::move(https);
  } else {
    http_ = std::make_unique<httplib::Server>();
  }
  const int threads = options_.request_threads + options_.max_streams;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_keep_alive_timeout(2);
  http_->set_read_timeout(10, 0);
  http_->set_write_timeout(10, 0);
  http_->set_payload_max_length(64 << 10);
  http_->set_default_headers({
      {"Content-Security-Policy", kContentSecurityPolicy},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
  });
  http_->set_logger([](const httplib::Request& req, const httplib::Response& res) {
    // The path only: a query string can carry labels, never needed here.
    LogLine(res.status >= 500 ? LogLevel::kWarning : LogLevel::kDebug)
        .Add("http", req.method)
        .Add("path", req.path)
        .Add("status", res.status);
  });
  Route();
  if (port == 0) {
    port_ = http_->bind_to_any_port(host_);
  } else {
    port_ = http_->bind_to_port(host_, port) ? port : -1;
  }
  if (port_ <= 0) {
    port_ = 0;
    return absl::UnavailableError(
        absl::StrCat("--http-listen: cannot listen on ", options_.listen));
  }
  if (!options_.port_file.empty()) {
    if (absl::Status s = WritePortFile(options_.port_file, port_); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("cannot write --http-port-file ",
                                                 options_.port_file, ": ", s.message()));
    }
  }
  listener_ = std::thread([this] { http_->listen_after_bind(); });
  // stop() only stops a server that already runs: wait for it (bounded),
  // so a Stop() right after Start() cannot leave the listener running.
  for (int i = 0; i < 5000 && !http_->is_running(); ++i) absl::SleepFor(absl::Milliseconds(1));
  sampler_ = std::thread([this] { Sample(); });
  return absl::OkStatus();
}

void DashboardServer::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  // Streams see stopping_ within a second; stop() then joins the pool.
  if (http_ != nullptr) http_->stop();
  if (listener_.joinable()) listener_.join();
  if (sampler_.joinable()) sampler_.join();
}

void DashboardServer::Sample() {
  do {
    absl::StatusOr<conveyor::v1::SystemStatus> status = api_.SystemStatus(SamplerCaller());
    if (status.ok()) history_.Add(clock_.Now(), *std::move(status));
  } while (!stopping_.WaitForNotificationWithTimeout(options_.sample_interval));
}

void DashboardServer::Route() {
  for (const WebAsset& asset : WebAssets()) {
    http_->Get(std::string(asset.path), [&asset](const httplib::Request&, httplib::Response& res) {
      res.set_header("Cache-Control", "no-cache");
      res.set_content(asset.body.data(), asset.body.size(), std::string(asset.content_type));
    });
  }
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  http_->Get("/healthz", [](Req, Res res) { res.set_content("ok\n", "text/plain"); });
  http_->Post("/api/login",
              [this](Req req, Res res) { ToHttplib(endpoints_.Login(FromHttplib(req)), res); });
  http_->Post("/api/logout",
              [this](Req req, Res res) { ToHttplib(endpoints_.Logout(FromHttplib(req)), res); });
  http_->Get("/api/whoami",
             [this](Req req, Res res) { ToHttplib(endpoints_.WhoAmI(FromHttplib(req)), res); });
  http_->Get("/api/status",
             [this](Req req, Res res) { ToHttplib(endpoints_.Status(FromHttplib(req)), res); });
  http_->Get("/api/chains",
             [this](Req req, Res res) { ToHttplib(endpoints_.ListChains(FromHttplib(req)), res); });
  http_->Get(R"(/api/chains/([^/]+))", [this](Req req, Res res) {
    ToHttplib(endpoints_.GetChain(FromHttplib(req), req.matches[1]), res);
  });
  http_->Post(R"(/api/chains/([^/]+)/(cancel|retry))", [this](Req req, Res res) {
    const HttpRequest request = FromHttplib(req);
    ToHttplib(req.matches[2] == "retry" ? endpoints_.RetryChain(request, req.matches[1])
                                        : endpoints_.CancelChain(request, req.matches[1]),
              res);
  });
  http_->Get(R"(/api/chains/([^/]+)/steps/([^/]+)/image)", [this](Req req, Res res) {
    ToHttplib(endpoints_.StepImage(FromHttplib(req), req.matches[1], req.matches[2]), res);
  });

  // A stream: admitted under max_streams, then the loop runs on this
  // request's pool thread, writing frames as chunks.
  using Loop = std::function<absl::Status(const EmitFrame&, const StreamCancelled&)>;
  auto stream = [this](Res res, Loop loop) {
    if (++streams_ > options_.max_streams) {
      --streams_;
      ToHttplib(ErrorReply(absl::ResourceExhaustedError(
                    absl::StrCat("too many live dashboard streams (", options_.max_streams, ")"))),
                res);
      return;
    }
    res.set_header("Cache-Control", "no-store");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, loop = std::move(loop)](size_t, httplib::DataSink& sink) {
          const EmitFrame emit = [&sink](const std::string& frame) {
            return sink.write(frame.data(), frame.size());
          };
          absl::Status status =
              loop(emit, [&] { return stopping_.HasBeenNotified() || !sink.is_writable(); });
          if (!status.ok() && status.code() != absl::StatusCode::kCancelled) {
            emit(SseFrame("error", ErrorJson(status)));
          }
          sink.done();
          return true;
        },
        [this](bool) { --streams_; });
  };
  http_->Get(R"(/api/chains/([^/]+)/events)", [this, stream](Req req, Res res) {
    const HttpRequest request = FromHttplib(req);
    const std::string id = req.matches[1];
    absl::StatusOr<Caller> caller = endpoints_.ChainStreamCaller(request, id);
    if (!caller.ok()) return ToHttplib(ErrorReply(caller.status()), res);
    stream(res, [this, caller = *caller, id, after = request.last_event_id](
                    const EmitFrame& emit, const StreamCancelled& cancelled) {
      return endpoints_.StreamChain(caller, id, after, emit, cancelled);
    });
  });
  http_->Get("/api/stream", [this, stream](Req req, Res res) {
    const HttpRequest request = FromHttplib(req);
    absl::StatusOr<Caller> caller = endpoints_.OverviewStreamCaller(request);
    if (!caller.ok()) return ToHttplib(ErrorReply(caller.status()), res);
    stream(res, [this, caller = *caller, query = request.query](const EmitFrame& emit,
                                                                const StreamCancelled& cancelled) {
      return endpoints_.StreamOverview(caller, query, emit, cancelled);
    });
  });
}

}  // namespace conveyor::orchestrator::dashboard
