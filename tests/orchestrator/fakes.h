// Deterministic time and randomness for orchestrator unit tests.
#ifndef CONVEYOR_TESTS_ORCHESTRATOR_FAKES_H_
#define CONVEYOR_TESTS_ORCHESTRATOR_FAKES_H_

#include "absl/synchronization/mutex.h"
#include "orchestrator/clock.h"

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

}  // namespace conveyor::orchestrator::testing

#endif  // CONVEYOR_TESTS_ORCHESTRATOR_FAKES_H_
