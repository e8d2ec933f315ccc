#include "client/commands.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/format.h"
#include "conveyor/v1/orchestrator.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace conveyor::client {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::ChainEvent;
using conveyor::v1::Orchestrator;
using conveyor::v1::StageKind;
using conveyor::v1::State;
using conveyor::v1::SubmitChainRequest;

// A watch outlives an outage of the replica serving it or of Redis (a
// restart loading its data, a Sentinel failover): on UNAVAILABLE it
// reconnects, resuming after the last event it saw, backing off from 100 ms
// doubling to 2 s. It gives up (exit 3) once it has been unavailable for
// kMaxWatchOutage on end, or at --max-wait.
constexpr absl::Duration kWatchBackoffInitial = absl::Milliseconds(100);
constexpr absl::Duration kWatchBackoffMax = absl::Seconds(2);
constexpr absl::Duration kMaxWatchOutage = absl::Minutes(2);

int UsageError(const absl::Status& status) {
  std::cerr << "error: " << status.message() << "\nRun with --help for usage.\n";
  return kExitUsage;
}

// "error: CODE: message", then any BadRequest field violations the message
// does not already spell out.
std::string RpcErrorText(const grpc::Status& status) {
  std::string text =
      absl::StrCat("error: ", CodeName(status.error_code()), ": ", status.error_message());
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      google::rpc::BadRequest bad_request;
      if (!any.UnpackTo(&bad_request)) continue;
      for (const auto& violation : bad_request.field_violations()) {
        if (absl::StrContains(status.error_message(), violation.description())) continue;
        absl::StrAppend(&text, "\n  ", violation.field(), ": ", violation.description());
      }
    }
  }
  return text;
}

int RpcError(const grpc::Status& status) {
  std::cerr << RpcErrorText(status) << "\n";
  return kExitRpcError;
}

absl::StatusOr<std::string> ReadWholeFile(absl::string_view flag, const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read \"", path, "\": ", std::strerror(errno)));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<absl::Duration> OptionalDuration(absl::string_view flag, const std::string& text) {
  if (text.empty()) return absl::InfiniteDuration();
  return ParseDurationFlag(flag, text);
}

// A channel and stub to the orchestrator, plus the per-RPC deadline.
class Session {
 public:
  static absl::StatusOr<std::unique_ptr<Session>> Open(const GlobalOptions& global) {
    absl::StatusOr<absl::Duration> timeout = ParseDurationFlag("--timeout", global.timeout);
    if (!timeout.ok()) return timeout.status();
    if (global.server.empty()) return absl::InvalidArgumentError("--server: must not be empty");
    return std::unique_ptr<Session>(new Session(global.server, *timeout));
  }

  Orchestrator::Stub& stub() { return *stub_; }

  // A context whose deadline is --timeout from now.
  std::unique_ptr<grpc::ClientContext> UnaryContext() const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    return context;
  }

 private:
  Session(const std::string& server, absl::Duration timeout)
      : stub_(
            Orchestrator::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()))),
        timeout_(timeout) {}

  std::unique_ptr<Orchestrator::Stub> stub_;
  absl::Duration timeout_;
};

// Opens the session or prints the usage error; returns nullptr then.
std::unique_ptr<Session> OpenOrReport(const GlobalOptions& global, int& exit_code) {
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Open(global);
  if (!session.ok()) {
    exit_code = UsageError(session.status());
    return nullptr;
  }
  return std::move(*session);
}

struct FollowResult {
  grpc::Status status;                            // of the watch itself
  State state = conveyor::v1::STATE_UNSPECIFIED;  // the chain's, at the end
  google::rpc::Status error;                      // the chain's error, if any
};

// Retries UNAVAILABLE with the watch's backoff, bounded by kMaxWatchOutage
// and `deadline`: reading the chain at the end of a watch meets the same
// outages as the watch itself.
grpc::Status GetChainRetrying(Session& session, const std::string& name, absl::Time deadline,
                              Chain* chain) {
  const absl::Time give_up = std::min(deadline, absl::Now() + kMaxWatchOutage);
  absl::Duration backoff = kWatchBackoffInitial;
  while (true) {
    auto context = session.UnaryContext();
    conveyor::v1::GetChainRequest get;
    get.set_name(name);
    grpc::Status status = session.stub().GetChain(context.get(), get, chain);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || absl::Now() >= give_up) {
      return status;
    }
    absl::SleepFor(std::min(backoff, give_up - absl::Now()));
    backoff = std::min(backoff * 2, kWatchBackoffMax);
  }
}

// Streams the chain's events into `on_event` until the server ends the
// stream (the chain is terminal), reconnecting after UNAVAILABLE (see
// kMaxWatchOutage). Stops with DEADLINE_EXCEEDED after `max_wait`.
FollowResult Follow(Session& session, const std::string& name, absl::Duration max_wait,
                    const std::function<void(const ChainEvent&)>& on_event) {
  FollowResult result;
  const absl::Time deadline =
      max_wait == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + max_wait;
  std::string after_event_id;
  absl::Duration backoff = kWatchBackoffInitial;
  absl::Time unavailable_since = absl::InfiniteFuture();
  while (true) {
    grpc::ClientContext context;
    if (deadline != absl::InfiniteFuture()) context.set_deadline(absl::ToChronoTime(deadline));
    conveyor::v1::WatchChainRequest request;
    request.set_name(name);
    request.set_after_event_id(after_event_id);
    std::unique_ptr<grpc::ClientReader<ChainEvent>> reader =
        session.stub().WatchChain(&context, request);
    ChainEvent event;
    bool progressed = false;
    while (reader->Read(&event)) {
      progressed = true;
      after_event_id = event.event_id();
      result.state = event.chain_state();
      if (event.has_error()) result.error = event.error();
      on_event(event);
    }
    result.status = reader->Finish();
    if (result.status.ok()) break;
    const absl::Time now = absl::Now();
    if (result.status.error_code() != grpc::StatusCode::UNAVAILABLE || now >= deadline) {
      return result;
    }
    // A stream that delivered events was a working connection: the outage
    // (and the backoff) starts afresh.
    if (progressed || unavailable_since == absl::InfiniteFuture()) {
      unavailable_since = now;
      backoff = kWatchBackoffInitial;
    }
    if (now - unavailable_since >= kMaxWatchOutage) return result;
    // Ask another replica (or the same one, back) after a pause.
    absl::SleepFor(std::min(backoff, deadline - now));
    backoff = std::min(backoff * 2, kWatchBackoffMax);
  }
  // The stream ended: normally at a terminal event. Read the chain to be sure
  // of its final state and error.
  Chain chain;
  grpc::Status status = GetChainRetrying(session, name, deadline, &chain);
  if (!status.ok()) {
    result.status = status;
    return result;
  }
  result.state = chain.state();
  result.error = chain.error();
  return result;
}

std::vector<StageKind> KindsOf(const conveyor::v1::ChainSpec& spec) {
  std::vector<StageKind> kinds;
  for (const auto& step : spec.steps()) kinds.push_back(StepKind(step));
  return kinds;
}

bool StdoutIsTerminal() { return isatty(STDOUT_FILENO) == 1; }

// Sends `request`, then the bytes of `in` as the source, in kUploadChunkBytes chunks.
grpc::Status StreamSubmit(Session& session, const SubmitChainRequest& request, std::istream& in,
                          Chain* chain) {
  auto context = session.UnaryContext();
  std::unique_ptr<grpc::ClientWriter<conveyor::v1::SubmitChainChunk>> writer =
      session.stub().StreamSubmitChain(context.get(), chain);
  conveyor::v1::SubmitChainChunk first;
  *first.mutable_request() = request;
  bool open = writer->Write(first);
  std::string buffer(kUploadChunkBytes, '\0');
  while (open && in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    conveyor::v1::SubmitChainChunk chunk;
    chunk.set_source_data(buffer.data(), static_cast<size_t>(got));
    open = writer->Write(chunk);
  }
  // A failed Write means the server already ended the call; Finish says why.
  writer->WritesDone();
  return writer->Finish();
}

// Opens a --file source; usage error if missing or empty.
absl::StatusOr<std::unique_ptr<std::ifstream>> OpenSource(absl::string_view flag,
                                                          const std::string& path) {
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read \"", path, "\": ", std::strerror(errno)));
  }
  if (in->peek() == std::ifstream::traits_type::eof()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": \"", path, "\" is empty"));
  }
  return in;
}

// After a followed chain ends: its results or its error, for people.
std::string FinalSummary(const Chain& chain) {
  std::string out = absl::StrCat(chain.name(), " ", StateName(chain.state()));
  if (chain.has_end_time() && chain.has_create_time()) {
    absl::StrAppend(&out, " in ",
                    ShortDuration(FromProtoTimestamp(chain.end_time()) -
                                  FromProtoTimestamp(chain.create_time())));
  }
  if (chain.has_error()) absl::StrAppend(&out, ": ", FormatRpcStatus(chain.error()));
  out += "\n";
  for (const auto& result : chain.results()) {
    absl::StrAppend(&out, "  ", result.uri(), "  ", FormatBytes(result.size_bytes()), "  ",
                    result.media_type(), "\n");
  }
  return out;
}

// Follows `chain` to its end, rendering progress (or nothing with --json),
// then prints the final chain. Returns the exit code.
int FollowAndReport(Session& session, const GlobalOptions& global, const Chain& chain,
                    absl::Duration max_wait) {
  WatchView view(KindsOf(chain.spec()), StdoutIsTerminal());
  FollowResult result = Follow(session, chain.name(), max_wait, [&](const ChainEvent& event) {
    if (global.json) return;
    std::cout << view.OnEvent(event) << std::flush;
  });
  if (!global.json) std::cout << view.Finish() << std::flush;
  if (!result.status.ok()) return RpcError(result.status);
  Chain final_chain;
  if (grpc::Status status =
          GetChainRetrying(session, chain.name(), absl::Now() + kMaxWatchOutage, &final_chain);
      !status.ok()) {
    return RpcError(status);
  }
  if (global.json) {
    std::cout << ToJson(final_chain, /*pretty=*/true) << "\n";
  } else {
    std::cout << FinalSummary(final_chain);
  }
  return final_chain.state() == conveyor::v1::SUCCEEDED ? kExitOk : kExitChainFailed;
}

}  // namespace

int RunSubmit(const GlobalOptions& global, const SubmitOptions& options) {
  int exit_code = kExitOk;
  std::unique_ptr<Session> session = OpenOrReport(global, exit_code);
  if (session == nullptr) return exit_code;
  absl::StatusOr<absl::Duration> max_wait = OptionalDuration("--max-wait", options.max_wait);
  if (!max_wait.ok()) return UsageError(max_wait.status());

  ChainFlags flags = options.chain;
  flags.steps.inline_source = !options.file.empty();
  absl::StatusOr<SubmitChainRequest> request;
  if (!options.spec_path.empty()) {
    absl::StatusOr<std::string> json = ReadWholeFile("--spec", options.spec_path);
    if (!json.ok()) return UsageError(json.status());
    request = BuildSubmitRequestFromSpec(*json, flags);
  } else {
    request = BuildSubmitRequest(flags);
  }
  if (!request.ok()) return UsageError(request.status());

  Chain chain;
  grpc::Status status;
  if (!options.file.empty()) {
    absl::StatusOr<std::unique_ptr<std::ifstream>> in = OpenSource("--file", options.file);
    if (!in.ok()) return UsageError(in.status());
    status = StreamSubmit(*session, *request, **in, &chain);
  } else {
    auto context = session->UnaryContext();
    status = session->stub().SubmitChain(context.get(), *request, &chain);
  }
  if (!status.ok()) return RpcError(status);

  if (!options.wait) {
    if (global.json) {
      std::cout << ToJson(chain, /*pretty=*/true) << "\n";
    } else {
      std::cout << chain.name() << "\n";
    }
    return kExitOk;
  }
  if (!global.json) std::cout << chain.name() << "\n" << std::flush;
  return FollowAndReport(*session, global, chain, *max_wait);
}

int RunGet(const GlobalOptions& global, const std::string& name) {
  int exit_code = kExitOk;
  std::unique_ptr<Session> session = OpenOrReport(global, exit_code);
  if (session == nullptr) return exit_code;
  auto context = session->UnaryContext();
  conveyor::v1::GetChainRequest request;
  request.set_name(name);
  Chain chain;
  if (grpc::Status status = session->stub().GetChain(context.get(), request, &chain);
      !status.ok()) {
    return RpcError(status);
  }
  std::cout << (global.json ? ToJson(chain, true) + "\n" : FormatChain(chain, absl::Now()));
  return kExitOk;
}

int RunWatch(const GlobalOptions& global, const WatchOptions& options) {
  int exit_code = kExitOk;
  std::unique_ptr<Session> session = OpenOrReport(global, exit_code);
  if (session == nullptr) return exit_code;
  absl::StatusOr<absl::Duration> max_wait = OptionalDuration("--max-wait", options.max_wait);
  if (!max_wait.ok()) return UsageError(max_wait.status());

  // The spec names the steps in the progress lines; NOT_FOUND surfaces here.
  // A Redis restart in progress (UNAVAILABLE) is waited out like mid-watch.
  Chain chain;
  if (grpc::Status status =
          GetChainRetrying(*session, options.chain,
                           *max_wait == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                                 : absl::Now() + *max_wait,
                           &chain);
      !status.ok()) {
    return RpcError(status);
  }
  WatchView view(KindsOf(chain.spec()), !global.json && StdoutIsTerminal());
  FollowResult result = Follow(*session, chain.name(), *max_wait, [&](const ChainEvent& event) {
    // --json: one JSON object per line, for `jq -c` and friends.
    std::cout << (global.json ? ToJson(event, false) + "\n" : view.OnEvent(event)) << std::flush;
  });
  std::cout << view.Finish() << std::flush;
  if (!result.status.ok()) return RpcError(result.status);
  if (!global.json) {
    std::cout << chain.name() << " " << StateName(result.state);
    if (result.error.code() != 0) std::cout << ": " << FormatRpcStatus(result.error);
    std::cout << "\n";
  }
  return result.state == conveyor::v1::SUCCEEDED ? kExitOk : kExitChainFailed;
}

namespace {

// The bulk verbs' confirmation. Returns kExitOk to go on, else the exit code:
// kExitUsage without a terminal on stdin (scripts must say --yes), and
// kExitChainFailed when the answer is not yes. The prompt goes to stderr so
// that stdout stays the command's output (--json).
int Confirm(absl::string_view verb, int64_t count) {
  if (isatty(STDIN_FILENO) != 1) {
    std::cerr << "error: refusing to " << verb << " " << count
              << (count == 1 ? " chain" : " chains")
              << " without confirmation: stdin is not a terminal. Pass --yes to confirm "
                 "(or --dry-run to only see what would change).\n";
    return kExitUsage;
  }
  std::cerr << ConfirmQuestion(verb, count) << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer) || !IsYes(answer)) {
    std::cerr << "Nothing changed.\n";
    return kExitChainFailed;
  }
  return kExitOk;
}

// retry / cancel by filter: preview (dry run), confirm, apply.
template <typename Request>
int RunBulk(Session& session, const GlobalOptions& global, const BulkOptions& options,
            absl::string_view verb,
            grpc::Status (Orchestrator::Stub::*call)(grpc::ClientContext*, const Request&,
                                                     conveyor::v1::BulkChainsResponse*)) {
  if (options.max_chains < 0) {
    return UsageError(absl::InvalidArgumentError(
        absl::StrCat("--max: want 1..10000 (0 = the server's cap), got ", options.max_chains)));
  }
  absl::StatusOr<conveyor::v1::ChainFilter> filter =
      BuildChainFilter(options.filter, absl::Now());
  if (!filter.ok()) return UsageError(filter.status());
  Request request;
  *request.mutable_filter() = *filter;
  request.set_max_chains(options.max_chains);
  request.set_dry_run(true);
  conveyor::v1::BulkChainsResponse preview;
  {
    auto context = session.UnaryContext();
    if (grpc::Status status = (session.stub().*call)(context.get(), request, &preview);
        !status.ok()) {
      return RpcError(status);
    }
  }
  auto print = [&](const conveyor::v1::BulkChainsResponse& response, bool dry_run) {
    std::cout << (global.json ? ToJson(response, true) + "\n"
                              : FormatBulkResult(response, verb, dry_run));
  };
  if (options.dry_run || preview.changed_count() == 0) {
    print(preview, options.dry_run);  // nothing to change: nothing to ask
    return kExitOk;
  }
  if (!options.yes) {
    if (int code = Confirm(verb, preview.changed_count()); code != kExitOk) return code;
  }
  // No more than the preview examined: what was confirmed, give or take the
  // chains that changed in between.
  request.set_dry_run(false);
  request.set_max_chains(static_cast<int32_t>(preview.matched_count()));
  conveyor::v1::BulkChainsResponse response;
  auto context = session.UnaryContext();
  if (grpc::Status status = (session.stub().*call)(context.get(), request, &response);
      !status.ok()) {
    return RpcError(status);
  }
  print(response, false);
  return response.failed_count() == 0 ? kExitOk : kExitChainFailed;
}

// NAME or a filter, not both, not neither.
absl::Status CheckBulkTarget(const BulkOptions& options) {
  const bool has_filter = !FilterFlagsEmpty(options.filter);
  if (!options.chain.empty() && has_filter) {
    return absl::InvalidArgumentError(
        "give either a chain name or filter flags (--state, --label, ...), not both");
  }
  if (options.chain.empty() && !has_filter) {
    return absl::InvalidArgumentError(
        "give a chain name, or at least one filter flag (--state, --label, --stage, "
        "--error-reason, --since, ...)");
  }
  if (!options.chain.empty() && (options.dry_run || options.max_chains != 0)) {
    return absl::InvalidArgumentError("--dry-run and --max apply to a filter, not to a chain name");
  }
  if (options.chain.empty() && options.wait) {
    return absl::InvalidArgumentError("--wait follows one chain: give its name");
  }
  return absl::OkStatus();
}

}  // namespace

int RunCancel(const GlobalOptions& global, const BulkOptions& options) {
  if (absl::Status s = CheckBulkTarget(options); !s.ok()) return UsageError(s);
  int exit_code = kExitOk;
  std::unique_ptr<Session> session = OpenOrReport(global, exit_code);
  if (session == nullptr) return exit_code;
  if (options.chain.empty()) {
    return RunBulk<conveyor::v1::CancelChainsRequest>(*session, global, options, "cancel",
                                                      &Orchestrator::Stub::CancelChains);
  }
  auto context = session->UnaryContext();
  conveyor::v1::CancelChainRequest request;
  request.set_name(options.chain);
  Chain chain;
  if (grpc::Status status = session->stub().CancelChain(context.get(), request, &chain);
      !status.ok()) {
    return RpcError(status);
  }
  if (global.json) {
    std::cout << ToJson(chain, true) << "\n";
  } else {
    std::cout << chain.name() << " " << StateName(chain.state()) << "\n";
  }
  return kExitOk;
}

int RunRetry(const GlobalOptions& global, const BulkOptions& options) {
  if (absl::Status s = CheckBulkTarget(options); !s.ok()) return UsageError(s);
  int exit_code = kExitOk;
  std::unique_ptr<Session> session = OpenOrReport(global, exit_code);
  if (session == nullptr) return exit_code;
  if (options.chain.empty()) {
    return RunBulk<conveyor::v1::RetryChainsRequest>(*session, global, options, "retry",
                                                     &Orchestrator::Stub::RetryChains);
  }
  absl::StatusOr<absl::Duration> max_wait = OptionalDuration("--max-wait", options.max_wait);
  if (!max_wait.ok()) return UsageError(max_wait.status());
  auto context = session->UnaryContext();
  conveyor::v1::RetryChainRequest request;
  request.set_name(options.chain);
  Chain chain;
  if (grpc::Status status = session->stub().RetryChain(context.get(), request, &chain);
      !status.ok()) {
    return RpcError(status);
  }
  if (!options.wait) {
    if (global.json) {
      std::cout << ToJson(chain, true) << "\n";
    } else {
      std::cout << chain.name() << " " << StateName(chain.state()) << "\n";
    }
    return kExitOk;
  }
  return FollowAndReport(*session, global, chain, *max_wait);
}

int RunList(const GlobalOptions& global, const ListOptions& options) {
  int exit_code = kExitOk;
  std::unique_ptr<Session> session = OpenOrReport(global, exit_code);
  if (session == nullptr) return exit_code;
  conveyor::v1::ListChainsRequest request;
  const absl::Time now = absl::Now();
  absl::StatusOr<conveyor::v1::ChainFilter> filter = BuildChainFilter(options.filter, now);
  if (!filter.ok()) return UsageError(filter.status());
  ApplyToListRequest(*filter, request);
  if (options.limit < 0 || options.limit > 1000) {
    return UsageError(
        absl::InvalidArgumentError(absl::StrCat("--limit: want 1..1000, got ", options.limit)));
  }
  request.set_page_size(options.limit);
  request.set_page_token(options.page_token);
  auto context = session->UnaryContext();
  conveyor::v1::ListChainsResponse response;
  if (grpc::Status status = session->stub().ListChains(context.get(), request, &response);
      !status.ok()) {
    return RpcError(status);
  }
  std::cout << (global.json ? ToJson(response, true) + "\n" : FormatChainList(response, now));
  return kExitOk;
}

// `status`: a stage not SERVING, or Redis unreachable.
constexpr int kExitStatusUnhealthy = 1;

int RunStatus(const GlobalOptions& global) {
  int exit_code = kExitOk;
  std::unique_ptr<Session> session = OpenOrReport(global, exit_code);
  if (session == nullptr) return exit_code;
  auto context = session->UnaryContext();
  conveyor::v1::SystemStatus status;
  if (grpc::Status rpc = session->stub().GetSystemStatus(
          context.get(), conveyor::v1::GetSystemStatusRequest(), &status);
      !rpc.ok()) {
    return RpcError(rpc);
  }
  std::cout << (global.json ? ToJson(status, true) + "\n"
                            : FormatSystemStatus(status, absl::Now()));
  // Non-zero when anything is not healthy, so scripts and probes can use
  // `conveyor status` as a check (docs/cli.md, status).
  return SystemHealthy(status) ? kExitOk : kExitStatusUnhealthy;
}

int RunPurge(const GlobalOptions& global, const PurgeOptions& options) {
  int exit_code = kExitOk;
  std::unique_ptr<Session> session = OpenOrReport(global, exit_code);
  if (session == nullptr) return exit_code;
  conveyor::v1::PurgeChainsRequest request;
  if (!options.state.empty()) {
    absl::StatusOr<State> state =
        ParseStateFlag("--state", options.state,
                       {conveyor::v1::SUCCEEDED, conveyor::v1::FAILED, conveyor::v1::CANCELLED});
    if (!state.ok()) return UsageError(state.status());
    request.set_state(*state);
  }
  if (!options.older_than.empty()) {
    absl::StatusOr<absl::Duration> age = ParseDurationFlag("--older-than", options.older_than);
    if (!age.ok()) return UsageError(age.status());
    *request.mutable_older_than() = ToProtoDuration(*age);
  }
  if (!options.dry_run && !options.yes) {
    // Count first, then ask: deleting is not undoable.
    request.set_dry_run(true);
    conveyor::v1::PurgeChainsResponse preview;
    auto context = session->UnaryContext();
    if (grpc::Status status = session->stub().PurgeChains(context.get(), request, &preview);
        !status.ok()) {
      return RpcError(status);
    }
    if (preview.purged_count() == 0) {
      std::cout << (global.json ? ToJson(preview, true) + "\n" : "No chains to purge.\n");
      return kExitOk;
    }
    if (int code = Confirm("purge", preview.purged_count()); code != kExitOk) return code;
  }
  request.set_dry_run(options.dry_run);
  auto context = session->UnaryContext();
  conveyor::v1::PurgeChainsResponse response;
  if (grpc::Status status = session->stub().PurgeChains(context.get(), request, &response);
      !status.ok()) {
    return RpcError(status);
  }
  std::cout << (global.json ? ToJson(response, true) + "\n"
                            : FormatPurge(response, options.dry_run));
  return kExitOk;
}

namespace {

bool IsImagePath(const std::filesystem::path& path) {
  const std::string ext = absl::AsciiStrToLower(path.extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp";
}

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

}  // namespace

int RunBatch(const GlobalOptions& global, const BatchOptions& options) {
  int exit_code = kExitOk;
  std::unique_ptr<Session> session = OpenOrReport(global, exit_code);
  if (session == nullptr) return exit_code;
  absl::StatusOr<absl::Duration> max_wait = OptionalDuration("--max-wait", options.max_wait);
  if (!max_wait.ok()) return UsageError(max_wait.status());
  if (options.concurrency < 1 || options.concurrency > 1024) {
    return UsageError(absl::InvalidArgumentError(
        absl::StrCat("--concurrency: want 1..1024, got ", options.concurrency)));
  }
  // Check the step flags once, before anything is submitted.
  {
    ChainFlags probe = options.chain;
    probe.steps.url = "http://127.0.0.1/probe.jpg";
    if (absl::StatusOr<SubmitChainRequest> r = BuildSubmitRequest(probe); !r.ok()) {
      return UsageError(r.status());
    }
  }
  absl::StatusOr<std::vector<std::string>> items = BatchItems(options.input);
  if (!items.ok()) return UsageError(items.status());
  if (items->empty()) {
    return UsageError(absl::InvalidArgumentError(
        absl::StrCat("input: no URLs or image files in \"", options.input, "\"")));
  }

  const bool tty = StdoutIsTerminal();
  const int total = static_cast<int>(items->size());
  std::vector<BatchItemResult> results(items->size());
  absl::Mutex mu;
  int done = 0, succeeded = 0, failed = 0, running = 0;  // guarded by mu
  std::atomic<int> next{0};

  const auto print_progress = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (tty) {
      std::cout << "\r\033[K" << FormatBatchProgress(done, total, succeeded, failed, running, 30)
                << std::flush;
    }
  };

  const auto run_item = [&](const std::string& source) {
    BatchItemResult item;
    item.source = source;
    const absl::Time start = absl::Now();
    ChainFlags flags = options.chain;
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
    } else if (is_url) {
      auto context = session->UnaryContext();
      status = session->stub().SubmitChain(context.get(), *request, &chain);
    } else {
      absl::StatusOr<std::unique_ptr<std::ifstream>> in = OpenSource("file", source);
      if (!in.ok()) {
        item.reason = std::string(in.status().message());
      } else {
        status = StreamSubmit(*session, *request, **in, &chain);
      }
    }
    if (item.reason.empty() && !status.ok()) {
      item.reason = absl::StrCat(CodeName(status.error_code()), ": ", status.error_message());
    }
    if (item.reason.empty()) {
      item.chain = chain.name();
      FollowResult result = Follow(*session, chain.name(), *max_wait, [](const ChainEvent&) {});
      if (!result.status.ok()) {
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
          BatchItemResult item = run_item((*items)[index]);
          absl::MutexLock lock(&mu);
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
  return failed == 0 ? kExitOk : kExitChainFailed;
}

}  // namespace conveyor::client
