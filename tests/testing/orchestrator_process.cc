#include "tests/testing/orchestrator_process.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/stage_registry.h"

namespace conveyor::testing {

std::unique_ptr<v1::Orchestrator::Stub> NewOrchestratorStub(const std::string& address,
                                                            absl::Duration max_reconnect_backoff) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (max_reconnect_backoff > absl::ZeroDuration()) {
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                static_cast<int>(absl::ToInt64Milliseconds(max_reconnect_backoff)));
  }
  return v1::Orchestrator::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

OrchestratorProcess::OrchestratorProcess(const std::string& redis_url,
                                         const std::map<std::string, std::string>& targets,
                                         std::vector<std::string> extra_flags, std::string log_path,
                                         int port) {
  // PickFreePort closes what it bound: nothing listens there.
  const std::string nowhere = LoopbackAddress(PickFreePort());
  std::vector<std::string> argv = {std::string(CONVEYOR_BIN_DIR) + "/conveyor-orchestrator",
                                   "--redis-url", redis_url};
  for (const StageInfo& stage : Stages()) {
    auto it = targets.find(std::string(stage.name));
    argv.push_back(absl::StrCat("--", stage.name, "-target"));
    argv.push_back(it == targets.end() ? nowhere : it->second);
  }
  // Callers are anonymous with every scope unless the test configures
  // authentication itself; then only its flags count, not the fixture's
  // anonymous default (process_fixture.cc).
  const bool configures_auth = absl::c_any_of(extra_flags, [](const std::string& flag) {
    for (absl::string_view auth_flag :
         {"--tokens-file", "--jwt-keys", "--allow-anonymous", "--anonymous-scopes"}) {
      if (absl::StartsWith(flag, auth_flag)) return true;
    }
    return false;
  });
  std::vector<std::string> env;
  if (configures_auth) {
    env.push_back("CONVEYOR_ALLOW_ANONYMOUS=0");
  } else {
    argv.insert(argv.end(), {"--allow-anonymous", "--anonymous-scopes",
                             "chains.submit,chains.read,chains.cancel,admin"});
  }
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  server_ =
      std::make_unique<ServerProcess>(std::move(argv), std::move(log_path), std::move(env), port);
  ready_ = server_->started().ok() ? server_->WaitUntilServing() : server_->started();
  stub_ = NewOrchestratorStub(server_->address());
}

}  // namespace conveyor::testing
