// redis-server and redis-sentinel processes for tests that need several
// (replicas, sentinels) or must restart one on the same port.
//
// Redis cannot bind port 0 and report the port it got, so a node is started
// on a candidate port and started again on another if it could not bind.
// Readiness is the process id INFO reports, so a clash with someone else's
// Redis on the candidate port is never mistaken for ours.
#ifndef CONVEYOR_TESTS_TESTING_REDIS_NODE_H_
#define CONVEYOR_TESTS_TESTING_REDIS_NODE_H_

#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/redis/redis_connection.h"
#include "tests/testing/process_fixture.h"

namespace conveyor::testing {

// One command on a fresh short-lived connection to 127.0.0.1:`port`.
absl::StatusOr<orchestrator::RedisValue> RedisCall(int port,
                                                   std::initializer_list<std::string> argv);

// The value of "field:value" in an INFO reply; "" if absent.
std::string InfoField(const std::string& info, const std::string& field);

// The fields of a reply such as SENTINEL MASTER's (name, value, name, ...).
std::string ReplyField(const orchestrator::RedisValue& reply, const std::string& field);

class RedisNode {
 public:
  // Starts `binary` (/usr/bin/redis-server or /usr/bin/redis-sentinel) with
  // "port N", "bind 127.0.0.1" and `config` lines, on the first of up to 20
  // candidate ports (20000..31999, below Linux's ephemeral range) that it
  // binds. The config file (a sentinel rewrites it) and the log are
  // <dir>/<name>.conf and .log. The destructor kills it. `userinfo`
  // ("user:password", for a node whose default user is off) is what the
  // readiness check AUTHs with.
  static absl::StatusOr<std::unique_ptr<RedisNode>> Start(const std::string& binary,
                                                          const std::string& dir,
                                                          const std::string& name,
                                                          const std::vector<std::string>& config,
                                                          std::mt19937& rng,
                                                          const std::string& userinfo = "");

  int port() const { return port_; }
  const std::string& log() const { return log_; }
  ScopedProcess& process() { return *process_; }
  void Kill() { process_->Kill(); }
  // Starts it again on the same port (after Kill or an exit); false if it
  // does not answer within 20 s.
  bool Restart() { return Launch(absl::Seconds(20)); }

 private:
  RedisNode() = default;
  bool Launch(absl::Duration timeout);

  std::string binary_, conf_, log_, userinfo_;
  int port_ = 0;
  std::unique_ptr<ScopedProcess> process_;
};

}  // namespace conveyor::testing

#endif  // CONVEYOR_TESTS_TESTING_REDIS_NODE_H_
