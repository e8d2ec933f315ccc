// A real HTTP server on 127.0.0.1 for tests (cpp-httplib), on a port the
// kernel picks, serving from its own thread.
//
//   HttpTestServer server;
//   server.http().Get("/img", [&](const httplib::Request&, httplib::Response& res) {
//     res.set_content(jpeg_bytes, "image/jpeg");
//   });
//   server.Start();
//   std::string url = server.Url("/img");          // http://127.0.0.1:<port>/img
//
// Register every handler before Start(). Handlers that must wait (slow
// responses) use SleepUnlessStopping(), which returns early when the server
// stops, so a test never hangs on a sleeping handler.
#ifndef CONVEYOR_TESTS_TESTING_HTTP_TEST_SERVER_H_
#define CONVEYOR_TESTS_TESTING_HTTP_TEST_SERVER_H_

#include <httplib.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace conveyor::testing {

// A self-signed certificate for 127.0.0.1 (subjectAltName IP:127.0.0.1) and
// its key, as PEM files. The certificate is its own CA: give cert_path to a
// client as its CA file.
struct TlsFiles {
  std::string cert_path;
  std::string key_path;
};

// Writes a fresh EC P-256 key and certificate (valid one day) into `dir`.
absl::Status WriteSelfSignedCertificate(const std::string& dir, TlsFiles& files);

class HttpTestServer {
 public:
  // Binds 127.0.0.1:0 at once (connections queue until Start()).
  HttpTestServer();
  // The same over TLS with the given certificate (Url() then says https).
  explicit HttpTestServer(const TlsFiles& tls);
  // Stops the server, wakes sleeping handlers, joins the thread.
  ~HttpTestServer();
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  // For registering handlers before Start().
  httplib::Server& http() { return *server_; }

  // Starts serving on a thread owned by this object.
  void Start();

  int port() const { return port_; }
  // "http(s)://<host>:<port><path>"; `host` may be any loopback spelling, e.g.
  // "127.1" or "[::1]".
  std::string Url(absl::string_view path, absl::string_view host = "127.0.0.1") const;

  // Waits up to `duration`; returns early (false) if the server is stopping.
  bool SleepUnlessStopping(absl::Duration duration);

 private:
  void Bind();

  std::unique_ptr<httplib::Server> server_;
  bool tls_ = false;
  int port_ = -1;
  absl::Notification stopping_;
  std::thread thread_;
};


}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_HTTP_TEST_SERVER_H_
