// Time and randomness, injected so the scheduler is deterministic in tests
// (tests use a FakeClock and a scripted RandomSource).
#ifndef CONVEYOR_ORCHESTRATOR_CLOCK_H_
#define CONVEYOR_ORCHESTRATOR_CLOCK_H_

#include <random>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

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

inline google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t nanos = absl::ToUnixNanos(t);
  ts.set_seconds(nanos / 1000000000);
  ts.set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return ts;
}

inline absl::Time FromProtoTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

inline google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  google::protobuf::Duration out;
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  out.set_seconds(nanos / 1000000000);
  out.set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return out;
}

inline absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_CLOCK_H_
