// The part of main() every stage worker shares: signals, the server flags
// with the stage's default port from the registry, parsing, and serving the
// stage's one service on a bounded pool until SIGTERM. Included only by
// main.cc files (CLI11 is a heavy header).
//
//   int main(int argc, char** argv) {
//     conveyor::WorkerMain worker(conveyor::v1::STAGE_KIND_RESIZE, "conveyor-resize: ...");
//     ResizeOptions options;
//     worker.app().add_option("--max-pixels", options.max_pixels, ...);
//     if (auto exit_code = worker.Parse(argc, argv)) return *exit_code;
//     const Resizer resizer(options);
//     return worker.Serve<ResizeService>(resizer);
//   }
#ifndef CONVEYOR_COMMON_WORKER_MAIN_H_
#define CONVEYOR_COMMON_WORKER_MAIN_H_

#include <CLI/CLI.hpp>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "common/server.h"
#include "common/server_flags.h"
#include "common/stage_registry.h"
#include "common/worker_pool.h"

namespace conveyor {

class WorkerMain {
 public:
  // Blocks SIGTERM/SIGINT first (so construct it before any thread exists),
  // then adds the server flags; --listen defaults to 127.0.0.1 and the
  // registry's default port for `kind`.
  WorkerMain(v1::StageKind kind, std::string description) : app_(std::move(description)) {
    BlockTerminationSignals();
    if (const StageInfo* stage = FindStage(kind); stage != nullptr) {
      options_.listen = absl::StrCat("127.0.0.1:", stage->default_port);
    }
    AddServerFlags(app_, options_);
    AddClientNameFlag(app_, options_.tls);
  }

  // For the stage's own flags, added before Parse.
  CLI::App& app() { return app_; }
  const ServerOptions& server_options() const { return options_; }

  // The exit code when main() should stop at once (0 after --help, 2 after
  // a bad flag, with one line on stderr); nullopt to go on.
  absl::optional<int> Parse(int argc, char** argv) { return ParseCommandLine(app_, argc, argv); }

  // Serves `Service(logic, pool)` with a pool of --worker-threads and
  // --max-queued until SIGTERM; RunServer's exit code. The pool is made and
  // joined in here, so any late task ends before `logic`, which the caller
  // declared earlier, goes away.
  template <typename Service, typename Logic>
  int Serve(const Logic& logic) const {
    WorkerPool pool(options_.worker_threads, options_.max_queued);
    Service service(logic, pool);
    return RunServer(options_, {&service});
  }

 private:
  CLI::App app_;
  ServerOptions options_;
};

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_WORKER_MAIN_H_
