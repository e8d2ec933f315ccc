// The `conveyor` CLI's verbs, one function each. Each talks to the
// orchestrator's gRPC API, writes human (or --json) output to stdout and
// errors to stderr, and returns the process exit code (kExit* below).
//
// Never prints internals: only gRPC codes, server messages and our own text.
#ifndef CONVEYOR_CLIENT_COMMANDS_H_
#define CONVEYOR_CLIENT_COMMANDS_H_

#include <string>
#include <vector>

#include "client/chain_builder.h"
#include "client/chain_filter_flags.h"

namespace conveyor::client {

// The exit codes, and what each tells a script:
// Success (for --wait / watch: the chain SUCCEEDED).
inline constexpr int kExitOk = 0;
// The chain FAILED or was CANCELLED (--wait, watch, retry --wait), some chain
// of a batch did not succeed, or the confirmation prompt of retry / cancel /
// purge was answered no.
inline constexpr int kExitChainFailed = 1;
// Usage error: a bad flag or value, an unreadable --file/--spec/input.
inline constexpr int kExitUsage = 2;
// The RPC failed; stderr has "error: <GRPC_CODE>: <message>".
inline constexpr int kExitRpcError = 3;

// Chunk size of StreamSubmitChain for --file.
inline constexpr size_t kUploadChunkBytes = 1 << 20;

// Flags every subcommand shares.
struct GlobalOptions {
  std::string server = "127.0.0.1:50051";  // --server / CONVEYOR_SERVER
  std::string timeout = "30s";             // --timeout / CONVEYOR_TIMEOUT, per unary RPC
  bool json = false;                       // --json
  // TLS to the orchestrator (session.cc): --tls-ca (CA of its certificate;
  // default the system roots), --tls-cert/--tls-key (client certificate for
  // mTLS), --tls-server-name (name to verify), --insecure (plaintext, only
  // when no --tls-* flag is given). Env: CONVEYOR_TLS_CA, _CERT, _KEY,
  // _SERVER_NAME, CONVEYOR_INSECURE.
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
  bool insecure = false;
  // The bearer token sent on every call: --token, else CONVEYOR_TOKEN, else
  // the file --token-file / CONVEYOR_TOKEN_FILE, else the default token file
  // (token_source.h resolves them; these hold only the flags).
  std::string token, token_file;
};

struct TokenNewOptions {
  std::string principal, tenant, scopes;  // the tokens-file line's fields
  bool write = false;                     // --write: save to the token file instead of printing
};

struct SubmitOptions {
  ChainFlags chain;
  std::string file;       // --file: local image streamed as the source
  std::string spec_path;  // --spec: JSON file ("-" = stdin)
  bool wait = false;      // --wait: follow until terminal
  std::string max_wait;   // --max-wait: give up following after this long
};

struct WatchOptions {
  std::string chain;
  std::string max_wait;
};

struct ListOptions {
  FilterFlags filter;  // --state --label --stage --error-reason --since ...
  int limit = 0;
  std::string page_token;
};

// `retry` / `cancel`: one chain by name, or every chain matching a filter.
struct BulkOptions {
  std::string chain;   // NAME; exclusive with the filter flags
  FilterFlags filter;  // at least one, without NAME
  bool dry_run = false;  // --dry-run: only print what would change
  bool yes = false;      // --yes: no confirmation prompt
  int max_chains = 0;    // --max: at most this many matching chains (0 = server cap)
  bool wait = false;     // retry NAME --wait
  std::string max_wait;
};

struct BatchOptions {
  ChainFlags chain;   // steps applied to every item (no --url/--file)
  std::string input;  // file of lines, "-" for stdin, or a directory
  int concurrency = 4;
  std::string max_wait;  // per chain
};

struct PurgeOptions {
  std::string state;
  std::string older_than;
  bool dry_run = false;
  bool yes = false;  // --yes: no confirmation prompt
};

int RunSubmit(const GlobalOptions& global, const SubmitOptions& options);
int RunGet(const GlobalOptions& global, const std::string& chain);
int RunWatch(const GlobalOptions& global, const WatchOptions& options);
// Bulk forms (no NAME): a dry run first; unless --dry-run, asks
// "Retry 37 chains? [y/N]" on a terminal (stdin), or needs --yes. Without a
// terminal and without --yes: exit 2, nothing changed. Answering no: exit 1,
// nothing changed. Some chain could not be acted on: exit 1.
int RunCancel(const GlobalOptions& global, const BulkOptions& options);
int RunRetry(const GlobalOptions& global, const BulkOptions& options);
int RunList(const GlobalOptions& global, const ListOptions& options);
int RunStatus(const GlobalOptions& global);
int RunBatch(const GlobalOptions& global, const BatchOptions& options);
int RunPurge(const GlobalOptions& global, const PurgeOptions& options);
// `token new`: no server involved. Prints the token on stdout (unless
// --write saved it) and the tokens-file line on stderr.
int RunTokenNew(const GlobalOptions& global, const TokenNewOptions& options);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_COMMANDS_H_
