#include "common/unary_call.h"

#include <chrono>
#include <cstdint>

#include "common/log.h"
#include "common/status_details.h"

namespace conveyor {

void LogCall(absl::string_view rpc, const CallSubject& subject, const absl::Status& status,
             absl::Duration elapsed, size_t in_bytes, size_t out_bytes, const CallScope& scope) {
  LogLine line(status.ok() ? LogLevel::kInfo : LogLevel::kWarning);
  line.Add("rpc", rpc);
  // The chain is the caller's text: a long one must not make a huge line.
  constexpr size_t kMaxLoggedChainBytes = 128;
  if (!subject.chain.empty()) {
    line.Add("chain", absl::string_view(subject.chain).substr(0, kMaxLoggedChainBytes));
    if (subject.has_step) line.Add("step", subject.step).Add("attempt", subject.attempt);
  }
  line.Add("code", absl::StatusCodeToString(status.code()))
      .Add("ms", absl::ToDoubleMilliseconds(elapsed))
      .Add("in_bytes", static_cast<int64_t>(in_bytes))
      .Add("out_bytes", static_cast<int64_t>(out_bytes));
  for (const auto& [key, value] : scope.log_fields) line.Add(key, value);
  if (!status.ok()) line.Add("error", status.message().substr(0, 1024));
}

absl::Status WorkerBusyError() {
  return WithErrorReason(absl::ResourceExhaustedError("worker is at its concurrency limit "
                                                      "(--worker-threads + --max-queued); "
                                                      "retry later"),
                         kReasonWorkerBusy);
}

namespace internal {

absl::Time DeadlineOf(const grpc::CallbackServerContext& ctx) {
  auto deadline = ctx.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

}  // namespace internal
}  // namespace conveyor
