// Time and randomness, injected so the scheduler is deterministic in tests
// (tests use a FakeClock and a scripted RandomSource).
#ifndef CONVEYOR_ORCHESTRATOR_CLOCK_H_
#define CONVEYOR_ORCHESTRATOR_CLOCK_H_

#include <random>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/proto_time.h"

namespace conveyor::orchestrator {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

// Uniform doubles in [0, 1) for backoff jitter. Thread-safe.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual double Uniform01() = 0;
};

class RealRandomSource : public RandomSource {
 public:
  double Uniform01() override {
    absl::MutexLock lock(&mu_);
    return std::uniform_real_distribution<double>(0.0, 1.0)(engine_);
  }

 private:
  absl::Mutex mu_;
  std::mt19937_64 engine_{std::random_device{}()};
};

// The proto time conversions (common/proto_time.h), also under this
// namespace so orchestrator code and tests name them as before.
using ::conveyor::FromProtoDuration;
using ::conveyor::FromProtoTime;
using ::conveyor::ToProtoDuration;
using ::conveyor::ToProtoTime;

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_CLOCK_H_
