// `conveyor submit`.
#include "client/submit_command.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <istream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "client/chain_builder.h"
#include "client/cli_io.h"
#include "client/commands.h"
#include "client/follow.h"

namespace conveyor::client {

using conveyor::v1::Chain;
using conveyor::v1::SubmitChainRequest;

namespace {

// Opens a source file; INVALID_ARGUMENT naming `flag` if it cannot be read
// or is empty.
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

// StreamSubmitChain: `request` first, then the bytes of `in` as the source
// in kUploadChunkBytes chunks, under the --timeout deadline.
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

}  // namespace

absl::StatusOr<grpc::Status> SubmitFrom(Session& session, const SubmitChainRequest& request,
                                        absl::string_view flag, const std::string& file,
                                        Chain* chain) {
  if (file.empty()) {
    return session.Call(&conveyor::v1::Orchestrator::Stub::SubmitChain, request, chain);
  }
  absl::StatusOr<std::unique_ptr<std::ifstream>> in = OpenSource(flag, file);
  if (!in.ok()) return in.status();
  return StreamSubmit(session, request, **in, chain);
}

int RunSubmit(const GlobalOptions& global, const SubmitOptions& options) {
  return WithSession(global, [&](Session& session) {
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
    absl::StatusOr<grpc::Status> status =
        SubmitFrom(session, *request, "--file", options.file, &chain);
    if (!status.ok()) return UsageError(status.status());
    if (!status->ok()) return RpcError(*status, session.token_source());

    if (!options.wait) {
      PrintResult(global, chain, chain.name() + "\n");
      return kExitOk;
    }
    if (!global.json) std::cout << chain.name() << "\n" << std::flush;
    return FollowAndReport(session, global, chain, *max_wait);
  });
}

}  // namespace conveyor::client
