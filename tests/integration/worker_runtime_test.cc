// What every Conveyor server promises (the five stage workers and the
// orchestrator, all on common/server.cc): server reflection that lets
// grpcurl list and describe everything, grpc.health.v1 included (its
// descriptor served, unlike gRPC's default health service); health per
// service besides ""; the bound port reported through --port-file; a clear
// error and exit 1 on a port already in use; a clean exit on SIGTERM. And how
// the orchestrator's stage health check tells SERVING, NOT_SERVING,
// UNREACHABLE and WRONG_SERVICE apart, down to `conveyor status`.
//
// grpcurl is not packaged for Debian 12: the reflection client
// (tests/testing/reflection_client.h) asks what grpcurl would, over the
// network, and builds requests from the descriptors it gets back.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/testing/command_runner.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/reflection_client.h"
#include "tests/testing/webhook_secrets_file.h"

namespace conveyor {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

const std::string kBin = CONVEYOR_BIN_DIR;
struct ServerCase {
  std::string binary;
  std::string service;
  std::vector<std::string> extra_flags;  // "$TMP": a temp dir; "$REDIS": a redis URL;
                                         // "$SECRETS": a webhook secrets file
};

std::ostream& operator<<(std::ostream& out, const ServerCase& server) {
  return out << server.binary;
}

// Check(`service`) with the compiled-in stub, for the tests that are not
// about reflection.
grpc::Status CheckHealth(const std::string& address, const std::string& service,
                         HealthCheckResponse* response) {
  auto stub = Health::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  HealthCheckRequest request;
  request.set_service(service);
  return stub->Check(&context, request, response);
}

class ServerRuntimeTest : public ::testing::TestWithParam<ServerCase> {
 protected:
  void SetUp() override {
    std::vector<std::string> argv = {kBin + "/" + GetParam().binary};
    for (const auto& flag : GetParam().extra_flags) {
      if (flag == "$TMP") {
        argv.push_back(temp_.path());
      } else if (flag == "$REDIS") {
        redis_ = std::make_unique<testing::RedisServer>();
        argv.push_back(redis_->url());
      } else if (flag == "$SECRETS") {
        secrets_ = std::make_unique<testing::WebhookSecretsFile>();
        argv.push_back(secrets_->path());
      } else {
        argv.push_back(flag);
      }
    }
    server_ = std::make_unique<testing::ServerProcess>(argv, temp_.path() + "/server.log");
    ASSERT_TRUE(server_->started().ok()) << server_->started();
    absl::Status serving = server_->WaitUntilServing(absl::Seconds(20));
    ASSERT_TRUE(serving.ok()) << serving << "\n" << testing::ReadFile(temp_.path() + "/server.log");
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  }

  testing::TempDir temp_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<testing::WebhookSecretsFile> secrets_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_P(ServerRuntimeTest, ReflectionListsTheServiceHealthAndReflection) {
  testing::ReflectionClient client(channel_);
  absl::StatusOr<std::vector<std::string>> listed = client.ListServices();
  ASSERT_TRUE(listed.ok()) << listed.status();
  std::set<std::string> services(listed->begin(), listed->end());
  EXPECT_TRUE(services.count(GetParam().service)) << GetParam().service;
  EXPECT_TRUE(services.count("grpc.health.v1.Health"));
  EXPECT_TRUE(services.count("grpc.reflection.v1alpha.ServerReflection"));
}

TEST_P(ServerRuntimeTest, ReflectionResolvesEveryMethodsRequestAndResponse) {
  testing::ReflectionClient client(channel_);
  const auto* service = client.pool().FindServiceByName(GetParam().service);
  ASSERT_NE(service, nullptr) << GetParam().service;
  ASSERT_GT(service->method_count(), 0);
  for (int i = 0; i < service->method_count(); ++i) {
    const auto* method = service->method(i);
    ASSERT_NE(method->input_type(), nullptr) << method->full_name();
    ASSERT_NE(method->output_type(), nullptr) << method->full_name();
    // Resolved from the server's files, not just named (GetSystemStatus's
    // request is legitimately empty; every response has fields).
    EXPECT_GT(method->output_type()->field_count(), 0) << method->output_type()->full_name();
  }
}

// grpcurl's `describe grpc.health.v1.Health`: failed with "Symbol not found"
// while health was gRPC's default service (grpc/grpc issue 36665).
TEST_P(ServerRuntimeTest, ReflectionResolvesTheHealthService) {
  testing::ReflectionClient client(channel_);
  absl::StatusOr<const google::protobuf::FileDescriptor*> file =
      client.FileContainingSymbol("grpc.health.v1.Health");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->name(), "grpc/health/v1/health.proto");
  const auto* health = client.pool().FindServiceByName("grpc.health.v1.Health");
  ASSERT_NE(health, nullptr);
  ASSERT_NE(health->FindMethodByName("Check"), nullptr);
  ASSERT_NE(health->FindMethodByName("Watch"), nullptr);
  EXPECT_TRUE(health->FindMethodByName("Watch")->server_streaming());
  EXPECT_NE(health->FindMethodByName("Check")->output_type()->FindFieldByName("status"), nullptr);
}

// grpcurl's `grpc.health.v1.Health/Check`, for "" and the server's own
// service: request and response built from reflected descriptors only.
TEST_P(ServerRuntimeTest, HealthCheckOverReflectionAnswersServing) {
  testing::ReflectionClient client(channel_);
  for (const std::string& request :
       {std::string("{}"), absl::StrCat(R"({"service": ")", GetParam().service, R"("})")}) {
    absl::StatusOr<std::vector<std::string>> replies =
        client.Call("grpc.health.v1.Health/Check", {request}, absl::Seconds(5));
    ASSERT_TRUE(replies.ok()) << request << ": " << replies.status();
    ASSERT_EQ(replies->size(), 1u);
    EXPECT_THAT((*replies)[0], HasSubstr(R"("status": "SERVING")")) << request;
  }
}

TEST_P(ServerRuntimeTest, HealthOfAServiceItDoesNotServeIsNotFound) {
  HealthCheckResponse response;
  grpc::Status status = CheckHealth(server_->address(), "conveyor.v1.NoSuchStage", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
}

// Watch streams the status, then the change to NOT_SERVING when SIGTERM
// starts the drain, then ends; the process exits 0.
TEST_P(ServerRuntimeTest, WatchSeesNotServingOnSigtermAndTheServerExitsCleanly) {
  auto stub = Health::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  HealthCheckRequest request;
  request.set_service(GetParam().service);
  auto stream = stub->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  server_->process().Signal(SIGTERM);
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server_->process().Wait(absl::Seconds(20)), 0)
      << testing::ReadFile(temp_.path() + "/server.log");
}

INSTANTIATE_TEST_SUITE_P(
    AllServers, ServerRuntimeTest,
    ::testing::Values(
        ServerCase{"conveyor-download", "conveyor.v1.DownloadStage", {}},
        ServerCase{"conveyor-resize", "conveyor.v1.ResizeStage", {}},
        ServerCase{"conveyor-filter", "conveyor.v1.FilterStage", {}},
        ServerCase{"conveyor-upload", "conveyor.v1.UploadStage", {"--file-root", "$TMP"}},
        ServerCase{"conveyor-webhook", "conveyor.v1.WebhookStage", {"--secrets-file", "$SECRETS"}},
        ServerCase{"conveyor-orchestrator", "conveyor.v1.Orchestrator", {"--redis-url", "$REDIS"}}),
    [](const ::testing::TestParamInfo<ServerCase>& info) {
      return info.param.binary.substr(std::string("conveyor-").size());
    });

// --reflection=false (or CONVEYOR_REFLECTION=false): no reflection service,
// so a caller cannot list the methods; health still answers.
TEST(ReflectionFlagTest, ReflectionOffHidesTheServicesAndHealthStays) {
  testing::TempDir temp;
  testing::ServerProcess flag({kBin + "/conveyor-resize", "--reflection=false"},
                              temp.path() + "/resize.log");
  testing::ServerProcess env({kBin + "/conveyor-filter"}, temp.path() + "/filter.log",
                             {"CONVEYOR_REFLECTION=false"});
  for (testing::ServerProcess* server : {&flag, &env}) {
    ASSERT_TRUE(server->started().ok()) << server->started();
    ASSERT_TRUE(server->WaitUntilServing().ok());
    testing::ReflectionClient client(
        grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
    absl::StatusOr<std::vector<std::string>> listed = client.ListServices();
    EXPECT_EQ(listed.status().code(), absl::StatusCode::kUnimplemented) << listed.status();
    HealthCheckResponse response;
    EXPECT_TRUE(CheckHealth(server->address(), "", &response).ok());
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  }
}

// Two servers on one port: gRPC's default SO_REUSEPORT let the second bind
// and the kernel split connections between them (issue 9). Now the second
// exits 1 with one line, and the first keeps the port to itself.
TEST(PortTest, SecondServerOnATakenPortExitsWithOneClearLine) {
  testing::TempDir temp;
  testing::ServerProcess first({kBin + "/conveyor-resize"}, temp.path() + "/first.log");
  ASSERT_TRUE(first.started().ok()) << first.started();
  ASSERT_TRUE(first.WaitUntilServing().ok());

  const std::string log = temp.path() + "/second.log";
  testing::ScopedProcess second({kBin + "/conveyor-filter", "--listen", first.address()}, log);
  EXPECT_EQ(second.Wait(absl::Seconds(20)), 1);
  EXPECT_EQ(testing::ReadFile(log), absl::StrCat("conveyor-filter: cannot listen on ",
                                                 first.address(), ": address already in use\n"));

  // Every connection still reaches the first server, the resize worker.
  for (int i = 0; i < 5; ++i) {
    HealthCheckResponse response;
    ASSERT_TRUE(CheckHealth(first.address(), "conveyor.v1.ResizeStage", &response).ok());
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
    EXPECT_EQ(CheckHealth(first.address(), "conveyor.v1.FilterStage", &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

TEST(PortTest, PortFileHoldsTheBoundPort) {
  testing::TempDir temp;
  const std::string port_file = temp.path() + "/port";
  testing::ScopedProcess server({kBin + "/conveyor-resize", "--listen", "127.0.0.1:0",
                                 "--port-file", port_file},
                                temp.path() + "/server.log");
  absl::StatusOr<int> port = testing::WaitForPortFile(port_file, server, absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(testing::ReadFile(port_file), absl::StrCat(*port, "\n"));
  EXPECT_TRUE(testing::WaitForGrpcServing(testing::LoopbackAddress(*port), absl::Seconds(20)).ok());
  // The environment variable works like the flag.
  const std::string env_file = temp.path() + "/env-port";
  testing::ScopedProcess by_env({kBin + "/conveyor-filter", "--listen", "127.0.0.1:0"},
                                temp.path() + "/env.log", {"CONVEYOR_PORT_FILE=" + env_file});
  absl::StatusOr<int> env_port = testing::WaitForPortFile(env_file, by_env, absl::Seconds(20));
  ASSERT_TRUE(env_port.ok()) << env_port.status();
  EXPECT_NE(*env_port, *port);
}

TEST(PortTest, UnwritablePortFileExitsWithOneClearLine) {
  testing::TempDir temp;
  const std::string log = temp.path() + "/server.log";
  testing::ScopedProcess server({kBin + "/conveyor-resize", "--listen", "127.0.0.1:0",
                                 "--port-file", temp.path() + "/missing/dir/port"},
                                log);
  EXPECT_EQ(server.Wait(absl::Seconds(20)), 1);
  EXPECT_THAT(testing::ReadFile(log), HasSubstr("conveyor-resize: cannot write --port-file " +
                                                temp.path() + "/missing/dir/port: "));
}

// The orchestrator checks each target for the service it must serve.
class StageHealthTest : public ::testing::Test {
 protected:
  std::unique_ptr<testing::ServerProcess> Start(const std::string& binary,
                                                std::vector<std::string> flags = {}) {
    std::vector<std::string> argv = {kBin + "/" + binary};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto server = std::make_unique<testing::ServerProcess>(
        argv, absl::StrCat(temp_.path(), "/", binary, "-", ++started_, ".log"));
    EXPECT_TRUE(server->WaitUntilServing().ok()) << binary << ": " << server->started();
    return server;
  }

  std::unique_ptr<testing::ServerProcess> StartOrchestrator(const std::string& download,
                                                            const std::string& resize,
                                                            const std::string& filter,
                                                            const std::string& upload,
                                                            const std::string& webhook) {
    return Start("conveyor-orchestrator",
                 {"--redis-url", redis_.url(), "--download-target", download, "--resize-target",
                  resize, "--filter-target", filter, "--upload-target", upload,
                  "--webhook-target", webhook});
  }

  static v1::SystemStatus Status(const std::string& address) {
    auto stub = v1::Orchestrator::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::SystemStatus status;
    grpc::Status rpc = stub->GetSystemStatus(&context, v1::GetSystemStatusRequest(), &status);
    EXPECT_TRUE(rpc.ok()) << rpc.error_message();
    return status;
  }

  testing::TempDir temp_;
  testing::RedisServer redis_;
  testing::WebhookSecretsFile secrets_;
  int started_ = 0;
};

TEST_F(StageHealthTest, TellsServingNotServingUnreachableAndWrongServiceApart) {
  // A long drain delay keeps the SIGTERMed download worker answering
  // NOT_SERVING for the rest of the test.
  auto download = Start("conveyor-download", {"--drain-delay", "60s"});
  auto resize = Start("conveyor-resize");
  auto filter = Start("conveyor-filter");
  auto upload = Start("conveyor-upload", {"--file-root", temp_.path()});
  auto stopped = Start("conveyor-upload", {"--file-root", temp_.path()});
  auto webhook = Start("conveyor-webhook", secrets_.Flags());

  auto good = StartOrchestrator(download->address(), resize->address(), filter->address(),
                                upload->address(), webhook->address());
  testing::CommandResult ok = testing::RunCommand(
      {kBin + "/conveyor", "--server", good->address(), "status"}, absl::Seconds(30));
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_THAT(ok.out, Not(HasSubstr("Not serving")));

  // resize -> the filter worker; upload -> a worker that is then killed.
  auto bad = StartOrchestrator(download->address(), filter->address(), filter->address(),
                               stopped->address(), webhook->address());
  stopped->process().Kill();
  download->process().Signal(SIGTERM);

  v1::SystemStatus status;
  const absl::Time until = absl::Now() + absl::Seconds(20);
  do {
    status = Status(bad->address());
  } while (absl::Now() < until && status.stages_size() == 5 &&
           (status.stages(0).health() != v1::StageStatus::NOT_SERVING ||
            status.stages(3).health() != v1::StageStatus::UNREACHABLE));
  ASSERT_EQ(status.stages_size(), 5);
  EXPECT_EQ(status.stages(0).health(), v1::StageStatus::NOT_SERVING) << status.DebugString();
  EXPECT_EQ(status.stages(0).health_detail(), "health: NOT_SERVING");
  EXPECT_EQ(status.stages(1).health(), v1::StageStatus::WRONG_SERVICE) << status.DebugString();
  EXPECT_EQ(status.stages(1).health_detail(),
            absl::StrCat("the server at ", filter->address(),
                         " does not serve conveyor.v1.ResizeStage"));
  EXPECT_EQ(status.stages(2).health(), v1::StageStatus::SERVING) << status.DebugString();
  EXPECT_EQ(status.stages(2).health_detail(), "");
  EXPECT_EQ(status.stages(3).health(), v1::StageStatus::UNREACHABLE) << status.DebugString();
  EXPECT_THAT(status.stages(3).health_detail(), HasSubstr("UNAVAILABLE"));
  EXPECT_EQ(status.stages(4).health(), v1::StageStatus::SERVING) << status.DebugString();

  testing::CommandResult unhealthy = testing::RunCommand(
      {kBin + "/conveyor", "--server", bad->address(), "status"}, absl::Seconds(30));
  EXPECT_EQ(unhealthy.exit_code, 1) << unhealthy.out << unhealthy.err;
  EXPECT_THAT(unhealthy.out, HasSubstr("\nNot serving:\n  download: NOT_SERVING: health: NOT_SERVING\n"
                                       "  resize: WRONG_SERVICE: the server at "));
  EXPECT_THAT(unhealthy.out, HasSubstr("  upload: UNREACHABLE: UNAVAILABLE: "));
  // The table stays narrow: reasons are below it, not in its HEALTH column.
  const std::string table = unhealthy.out.substr(0, unhealthy.out.find("\nNot serving:"));
  for (absl::string_view line : absl::StrSplit(table, '\n')) {
    EXPECT_LE(line.size(), 100u) << line;
  }
}

}  // namespace
}  // namespace conveyor
