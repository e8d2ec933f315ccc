// The durability soak: 300 five-step chains (download -> resize -> filter ->
// upload -> webhook) through the real workers while an orchestrator replica,
// a resize worker replica and redis-server (append-only file) are each
// SIGKILLed and restarted. Afterwards every chain SUCCEEDED, none is missing,
// each stored exactly one object and had its webhook delivered, and no step
// ran again after it was recorded SUCCEEDED. Everything on 127.0.0.1.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/orchestrator_client.h"
#include "tests/testing/orchestrator_process.h"
#include "tests/testing/process_fixture.h"
#include "tests/testing/test_images.h"
#include "tests/testing/webhook_secrets_file.h"

// In conveyor::testing: the fixture's helpers (process_fixture.h,
// orchestrator_client.h) without a using-declaration each.
namespace conveyor::testing {
namespace {

using v1::Chain;
using v1::ChainEvent;

const std::string kBin = CONVEYOR_BIN_DIR;
constexpr int kChains = 300;

// One server binary that can be killed and started again on its port.
struct Server {
  std::vector<std::string> argv;
  std::string log;
  std::unique_ptr<ServerProcess> process;
  int port = 0;

  std::string address() const { return LoopbackAddress(port); }
  void Start() {
    process = std::make_unique<ServerProcess>(argv, log, std::vector<std::string>{}, port);
    EXPECT_TRUE(process->WaitUntilServing().ok()) << argv[0] << ": " << process->started();
    port = process->port();
  }
  void KillAndRestart() {
    process->process().Kill();
    Start();
  }
};

class SoakTest : public ::testing::Test {
 protected:
  void TearDown() override {
    std::vector<std::string> logs;
    for (const auto& server : servers_) logs.push_back(server->log);
    DumpLogs(logs, HasFailure(), /*tail_bytes=*/20000);
  }

  Server& Add(std::vector<std::string> argv, const std::string& name) {
    auto server = std::make_unique<Server>();
    server->argv = std::move(argv);
    server->log = absl::StrCat(dir_.path(), "/", name, ".log");
    server->Start();
    servers_.push_back(std::move(server));
    return *servers_.back();
  }

  RedisServer redis_{RedisServerOptions{.append_only = true}};
  TempDir dir_;
  std::vector<std::unique_ptr<Server>> servers_;
};

// Calls `rpc` until it is not UNAVAILABLE (Redis or a replica restarting),
// for at most 30 s: what a client of a restarting system does.
template <typename Rpc>
grpc::Status Persist(Rpc rpc) {
  const absl::Time until = absl::Now() + absl::Seconds(30);
  grpc::Status status;
  do {
    status = rpc();
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return status;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < until);
  return status;
}

TEST_F(SoakTest, ThreeHundredChainsSurviveKillsOfAReplicaAWorkerAndRedis) {
  HttpTestServer http;
  const std::string image = NoiseJpeg(320, 240);
  std::mutex hook_mu;
  std::map<std::string, int> deliveries;  // webhook-id -> count
  http.http().Get("/photo.jpg", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(image, "image/jpeg");
  });
  http.http().Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(hook_mu);
    ++deliveries[req.get_header_value("webhook-id")];
    res.status = 204;
  });
  http.Start();
  TempDir objects;
  const conveyor::testing::WebhookSecretsFile secrets;

  Server& download = Add({kBin + "/conveyor-download", "--allow-private-networks"}, "download");
  Server& resize_a = Add({kBin + "/conveyor-resize"}, "resize-a");
  Server& resize_b = Add({kBin + "/conveyor-resize"}, "resize-b");
  Server& filter = Add({kBin + "/conveyor-filter"}, "filter");
  Server& upload = Add({kBin + "/conveyor-upload", "--file-root", objects.path()}, "upload");
  Server& webhook = Add({kBin + "/conveyor-webhook", "--allow-private-networks",
                         "--secrets-file", secrets.path()},
                        "webhook");
  auto orchestrator_argv = [&](const std::string& name) {
    return std::vector<std::string>{
        kBin + "/conveyor-orchestrator", "--redis-url", redis_.url(), "--replica-name", name,
        "--download-target", download.address(),
        // Two resize replicas behind one target, as a DNS name with two
        // addresses would be.
        "--resize-target",
        absl::StrCat("ipv4:", resize_a.address(), ",", resize_b.address()), "--filter-target",
        filter.address(), "--upload-target", upload.address(), "--webhook-target", webhook.address(),
        "--max-in-flight", "16"};
  };
  Server& orch_a = Add(orchestrator_argv("soak-a"), "orchestrator-a");
  Server& orch_b = Add(orchestrator_argv("soak-b"), "orchestrator-b");
  auto stub_a = NewOrchestratorStub(orch_a.address());
  auto stub_b = NewOrchestratorStub(orch_b.address());

  auto request = [&](int i) {
    v1::SubmitChainRequest req;
    req.set_idempotency_key(absl::StrCat("soak-", i));
    v1::ChainSpec* spec = req.mutable_spec();
    spec->add_steps()->mutable_download()->set_url(http.Url("/photo.jpg"));
    spec->add_steps()->mutable_resize()->set_width(64);
    spec->add_steps()->mutable_filter()->add_ops()->mutable_grayscale();
    spec->add_steps()->mutable_upload()->set_destination("file://" + objects.path());
    spec->add_steps()->mutable_webhook()->set_url(http.Url("/hook"));
    for (v1::Step& step : *spec->mutable_steps()) {
      step.mutable_retry()->set_max_attempts(5);
      step.mutable_retry()->mutable_initial_backoff()->set_nanos(100'000'000);
      step.mutable_retry()->mutable_max_backoff()->set_seconds(1);
    }
    return req;
  };
  // Submit in the background while the kills happen, through both replicas
  // (retrying through the other one while one is down).
  std::vector<std::string> names(kChains);
  std::atomic<int> submitted{0};
  std::thread submitter([&] {
    for (int i = 0; i < kChains; ++i) {
      Chain chain;
      grpc::Status s = Persist([&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        auto& stub = (i + submitted.load()) % 2 ? stub_a : stub_b;
        return stub->SubmitChain(&ctx, request(i), &chain);
      });
      if (!s.ok()) {
        ADD_FAILURE() << "submit " << i << ": " << s.error_message();
        continue;
      }
      names[i] = chain.name();
      submitted.store(i + 1);
      absl::SleepFor(absl::Milliseconds(20));  // a steady load, so kills hit work in flight
    }
  });
  auto wait_submitted = [&](int n) {
    const absl::Time until = absl::Now() + absl::Seconds(60);
    while (submitted.load() < n && absl::Now() < until) absl::SleepFor(absl::Milliseconds(10));
  };
  wait_submitted(kChains / 4);
  orch_a.KillAndRestart();
  wait_submitted(kChains / 2);
  resize_a.KillAndRestart();
  wait_submitted(3 * kChains / 4);
  redis_.Restart();
  submitter.join();

  const absl::Time until = absl::Now() + absl::Seconds(180);
  std::map<std::string, Chain> done;
  for (const std::string& name : names) {
    if (name.empty()) continue;
    while (absl::Now() < until) {
      Chain chain;
      grpc::Status s = Persist([&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        v1::GetChainRequest get;
        get.set_name(name);
        return stub_b->GetChain(&ctx, get, &chain);
      });
      ASSERT_TRUE(s.ok()) << name << ": " << s.error_message();
      if (IsTerminal(chain.state())) {
        done[name] = chain;
        break;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
  ASSERT_EQ(done.size(), static_cast<size_t>(kChains)) << "chains missing or not finished";

  std::map<std::string, int> objects_per_chain;
  for (const auto& file : std::filesystem::directory_iterator(objects.path())) {
    const std::string stem = file.path().filename().string();
    ++objects_per_chain[stem.substr(0, stem.find('-'))];
  }
  int reruns = 0;
  for (const auto& [name, chain] : done) {
    ASSERT_EQ(chain.state(), v1::SUCCEEDED) << chain.ShortDebugString();
    const std::string id = name.substr(7);
    EXPECT_EQ(objects_per_chain[id], 1) << name;
    {
      std::lock_guard<std::mutex> lock(hook_mu);
      EXPECT_GE(deliveries[absl::StrCat("msg_", id, "_4")], 1) << name;
    }
    // No step started again once it was recorded SUCCEEDED.
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::WatchChainRequest watch;
    watch.set_name(name);
    auto reader = stub_b->WatchChain(&ctx, watch);
    std::set<int> succeeded;
    ChainEvent e;
    while (reader->Read(&e)) {
      if (e.type() == ChainEvent::STEP_SUCCEEDED) succeeded.insert(e.step_index());
      if (e.type() == ChainEvent::STEP_STARTED) {
        EXPECT_EQ(succeeded.count(e.step_index()), 0u) << name << " step " << e.step_index();
      }
    }
    EXPECT_TRUE(reader->Finish().ok());
    for (const auto& step : chain.steps()) reruns += step.attempts() > 1;
  }
  std::printf("soak: %d chains SUCCEEDED, %d steps ran more than once (at-least-once delivery)\n",
              kChains, reruns);
}

}  // namespace
}  // namespace conveyor::testing
