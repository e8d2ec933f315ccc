// Deterministic time, randomness and stage health for orchestrator unit
// tests, and a StageClient for tests that must never reach a stage.
#ifndef CONVEYOR_TESTS_ORCHESTRATOR_FAKES_H_
#define CONVEYOR_TESTS_ORCHESTRATOR_FAKES_H_

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "orchestrator/clock.h"
#include "orchestrator/stage_client.h"

namespace conveyor::orchestrator::testing {

class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1767225600)) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_;
};

// Always returns `value` (0.5 = no jitter effect).
class FixedRandom : public RandomSource {
 public:
  explicit FixedRandom(double value = 0.5) : value_(value) {}
  double Uniform01() override { return value_; }
  void set(double value) { value_ = value; }

 private:
  double value_;
};

// What a fake StageClient's CheckHealth answers, per stage: SERVING unless
// set otherwise. Thread-safe (a dispatcher may poll it from its own thread).
class ScriptedHealth {
 public:
  void Set(conveyor::v1::StageKind kind, StageHealth health) {
    absl::MutexLock lock(&mu_);
    health_[kind] = std::move(health);
  }
  StageHealth Get(conveyor::v1::StageKind kind) const {
    absl::MutexLock lock(&mu_);
    auto it = health_.find(kind);
    return it == health_.end() ? StageHealth{StageHealth::State::kServing, ""} : it->second;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<conveyor::v1::StageKind, StageHealth> health_ ABSL_GUARDED_BY(mu_);
};

// For tests of ChainApi, which asks stages only for health and targets: every
// stage serves, and a stage call is a test failure.
class NoCallsStageClient : public StageClient {
 public:
  std::shared_ptr<StageCallHandle> Start(StageCall,
                                         absl::AnyInvocable<void(StageReply) &&>) override {
    ADD_FAILURE() << "a stage was called where none should be";
    return nullptr;
  }
  std::string Target(conveyor::v1::StageKind) const override { return "nowhere:1"; }
  StageHealth CheckHealth(conveyor::v1::StageKind, absl::Duration) override {
    return {StageHealth::State::kServing, ""};
  }
};

}  // namespace conveyor::orchestrator::testing

#endif  // CONVEYOR_TESTS_ORCHESTRATOR_FAKES_H_
