// `conveyor batch`: one chain per input item, `--concurrency` of them in
// flight at once, each submitted and followed to its end by one of a fixed
// set of joined worker threads sharing the Session.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/batch_format.h"
#include "client/chain_builder.h"
#include "client/cli_io.h"
#include "client/commands.h"
#include "client/flag_values.h"
#include "client/follow.h"
#include "client/format.h"
#include "client/submit_command.h"

namespace conveyor::client {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::SubmitChainRequest;

bool IsImagePath(const std::filesystem::path& path) {
  const std::string ext = absl::AsciiStrToLower(path.extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp";
}

// The image files of a directory (sorted), or the lines of a file or stdin.
absl::StatusOr<std::vector<std::string>> BatchItems(const std::string& input) {
  std::error_code error;
  if (input != "-" && std::filesystem::is_directory(input, error)) {
    std::vector<std::string> items;
    for (const auto& entry : std::filesystem::directory_iterator(input, error)) {
      if (entry.is_regular_file() && IsImagePath(entry.path())) {
        items.push_back(entry.path().string());
      }
    }
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat("input: cannot list \"", input, "\": ", error.message()));
    }
    std::sort(items.begin(), items.end());
    return items;
  }
  absl::StatusOr<std::string> text = ReadWholeFile("input", input);
  if (!text.ok()) return text.status();
  return ParseBatchLines(*text);
}

// Submits the chain of one item (a URL, or a file streamed as the source)
// and follows it to its end. Never fails: what went wrong is the reason, and
// a failed submit or watch call's status goes to `*call_status`.
BatchItemResult RunItem(Session& session, const ChainFlags& chain_flags, absl::Duration max_wait,
                        const std::string& source, grpc::Status* call_status) {
  BatchItemResult item;
  item.source = source;
  const absl::Time start = absl::Now();
  ChainFlags flags = chain_flags;
  const bool is_url = IsHttpUrl(source);
  if (is_url) {
    flags.steps.url = source;
  } else {
    flags.steps.inline_source = true;
  }
  absl::StatusOr<SubmitChainRequest> request = BuildSubmitRequest(flags);
  Chain chain;
  grpc::Status status;
  if (!request.ok()) {
    item.reason = std::string(request.status().message());
  } else {
    absl::StatusOr<grpc::Status> sent =
        SubmitFrom(session, *request, "file", is_url ? "" : source, &chain);
    if (!sent.ok()) {
      item.reason = std::string(sent.status().message());
    } else {
      status = *sent;
    }
  }
  if (item.reason.empty() && !status.ok()) {
    *call_status = status;
    item.reason = absl::StrCat(CodeName(status.error_code()), ": ", status.error_message());
  }
  if (item.reason.empty()) {
    item.chain = chain.name();
    FollowResult result =
        Follow(session, chain.name(), max_wait, [](const conveyor::v1::ChainEvent&) {});
    if (!result.status.ok()) {
      *call_status = result.status;
      item.reason = absl::StrCat("watch: ", CodeName(result.status.error_code()), ": ",
                                 result.status.error_message());
    } else if (result.state == conveyor::v1::SUCCEEDED) {
      item.succeeded = true;
    } else {
      item.reason = absl::StrCat(StateName(result.state));
      if (result.error.code() != 0) {
        absl::StrAppend(&item.reason, ": ", FormatRpcStatus(result.error));
      }
    }
  }
  item.elapsed = absl::Now() - start;
  return item;
}

bool IsCredentialFailure(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
}

// Runs every item, printing each result as it finishes (on a terminal only
// the failures, above a progress bar), then the summary. The exit code.
int RunItems(Session& session, const BatchOptions& options, absl::Duration max_wait,
             const std::vector<std::string>& items) {
  const bool tty = StdoutIsTerminal();
  const int total = static_cast<int>(items.size());
  std::vector<BatchItemResult> results(items.size());
  absl::Mutex mu;
  int done = 0, succeeded = 0, failed = 0, running = 0;  // guarded by mu
  grpc::Status credential_failure;                       // guarded by mu
  std::atomic<int> next{0};

  const auto print_progress = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (tty) {
      std::cout << "\r\033[K" << FormatBatchProgress(done, total, succeeded, failed, running, 30)
                << std::flush;
    }
  };

  const absl::Time start = absl::Now();
  {
    std::vector<std::jthread> workers;
    const int threads = std::min(options.concurrency, total);
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        for (int index = next++; index < total; index = next++) {
          {
            absl::MutexLock lock(&mu);
            ++running;
            print_progress();
          }
          grpc::Status call_status;
          BatchItemResult item =
              RunItem(session, options.chain, max_wait, items[index], &call_status);
          absl::MutexLock lock(&mu);
          if (credential_failure.ok() && IsCredentialFailure(call_status)) {
            credential_failure = call_status;
          }
          --running;
          ++done;
          item.succeeded ? ++succeeded : ++failed;
          if (tty) {
            // Failures scroll above the bar; successes only move it.
            if (!item.succeeded) std::cout << "\r\033[K" << FormatBatchItem(item) << "\n";
          } else {
            std::cout << FormatBatchItem(item) << "\n" << std::flush;
          }
          results[index] = std::move(item);
          print_progress();
        }
      });
    }
  }  // joins the workers
  const absl::Duration wall = absl::Now() - start;
  if (tty) std::cout << "\n";
  std::cout << FormatBatchSummary(results, wall) << std::flush;
  // The summary lists each item's code; what to do about a token is said once.
  if (std::string hint = RpcErrorHint(credential_failure, session.token_source()); !hint.empty()) {
    std::cerr << hint << "\n";
  }
  return failed == 0 ? kExitOk : kExitChainFailed;
}

}  // namespace

int RunBatch(const GlobalOptions& global, const BatchOptions& options) {
  return WithSession(global, [&](Session& session) {
    absl::StatusOr<absl::Duration> max_wait = OptionalDuration("--max-wait", options.max_wait);
    if (!max_wait.ok()) return UsageError(max_wait.status());
    if (options.concurrency < 1 || options.concurrency > 1024) {
      return UsageError(absl::InvalidArgumentError(
          absl::StrCat("--concurrency: want 1..1024, got ", options.concurrency)));
    }
    // Check the step flags once, before anything is submitted.
    ChainFlags probe = options.chain;
    probe.steps.url = "http://127.0.0.1/probe.jpg";
    if (absl::StatusOr<SubmitChainRequest> r = BuildSubmitRequest(probe); !r.ok()) {
      return UsageError(r.status());
    }
    absl::StatusOr<std::vector<std::string>> items = BatchItems(options.input);
    if (!items.ok()) return UsageError(items.status());
    if (items->empty()) {
      return UsageError(absl::InvalidArgumentError(
          absl::StrCat("input: no URLs or image files in \"", options.input, "\"")));
    }
    return RunItems(session, options, *max_wait, *items);
  });
}

}  // namespace conveyor::client
