#include "tests/testing/orchestrator_process.h"

#include <grpcpp/grpcpp.h>

#include <utility>

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
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  server_ = std::make_unique<ServerProcess>(std::move(argv), std::move(log_path),
                                            std::vector<std::string>{}, port);
  ready_ = server_->started().ok() ? server_->WaitUntilServing() : server_->started();
  stub_ = NewOrchestratorStub(server_->address());
}

}  // namespace conveyor::testing
