#include "tests/testing/http_test_server.h"

#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace conveyor::testing {

HttpTestServer::HttpTestServer() {
  // Idle keep-alive connections hold a server thread, and stop() joins them:
  // keep the wait short.
  server_.set_keep_alive_timeout(1);
  port_ = server_.bind_to_any_port("127.0.0.1");
  if (port_ <= 0) {
    std::cerr << "HttpTestServer: cannot bind 127.0.0.1:0\n";
    std::abort();
  }
}

HttpTestServer::~HttpTestServer() {
  stopping_.Notify();
  // httplib's stop() only closes the socket of a running server: a server
  // never started is started first, so its socket is closed too.
  if (!thread_.joinable()) Start();
  server_.stop();
  thread_.join();
}

void HttpTestServer::Start() {
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  // stop() is a no-op until the accept loop runs: wait for it (bounded).
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!server_.is_running()) {
    if (absl::Now() > give_up) {
      std::cerr << "HttpTestServer: accept loop did not start within 10s\n";
      std::abort();
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
}

std::string HttpTestServer::Url(absl::string_view path, absl::string_view host) const {
  return absl::StrCat("http://", host, ":", port_, path);
}

bool HttpTestServer::SleepUnlessStopping(absl::Duration duration) {
  return !stopping_.WaitForNotificationWithTimeout(duration);
}

}  // namespace conveyor::testing
