// conveyor: the command-line client of the Conveyor orchestrator.
// Flags -> options structs -> one Run* function per verb (commands.h).
#include <grpc/support/log.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <string>
#include <type_traits>
#include <vector>

#include "client/commands.h"
#include "common/cli_flags.h"
#include "common/stage_registry.h"

namespace {

using conveyor::client::BatchOptions;
using conveyor::client::ChainFlags;
using conveyor::client::GlobalOptions;

// Adds an option in help group `group`; a vector takes one value per flag
// (--label a=1 --label b=2), so a value never swallows the next argument.
template <typename T>
CLI::Option* AddIn(CLI::App& cmd, const std::string& group, const std::string& name, T& value,
                   const std::string& help) {
  CLI::Option* option = cmd.add_option(name, value, help)->group(group);
  if constexpr (std::is_same_v<T, std::vector<std::string>>) option->allow_extra_args(false);
  return option;
}

// The step and chain flags `submit` and `batch` share.
void AddStepFlags(CLI::App& cmd, ChainFlags& flags, bool with_idempotency) {
  auto& s = flags.steps;
  const std::string steps = "Steps", chain = "Chain";
  AddIn(cmd, steps, "--resize", s.resize, "Resize to WxH, Wx or xH (e.g. 800x600, 800x, x600)");
  AddIn(cmd, steps, "--fit", s.fit,
        "How --resize fits: contain (default), cover (crop), fill (stretch), inside "
        "(never upscale)");
  cmd.add_flag("--fast", s.fast, "Faster, softer JPEG shrink-on-load for --resize")->group(steps);
  AddIn(cmd, steps, "--format", s.format,
        "Output format of the last resize/filter step: jpeg, png or webp");
  AddIn(cmd, steps, "--quality", s.quality, "JPEG/WebP quality 1..100 (default 85)");
  AddIn(cmd, steps, "--filter", s.filters,
        "Filter op, repeatable, applied in order: grayscale | blur[:sigma=2] | "
        "sharpen[:amount=1,sigma=1] | sepia | brightness:brightness=10,contrast=1.2 | "
        "invert | edges[:low=100,high=200]");
  AddIn(cmd, steps, "--upload", s.upload, "Store the image: file:///dir or s3://bucket[/prefix]");
  AddIn(cmd, steps, "--key", s.key_template,
        "Object key template for --upload: {chain_id} {step} {ext} {width} {height} "
        "(default {chain_id}-{step}.{ext})");
  AddIn(cmd, steps, "--webhook", s.webhook, "POST a signed report of the chain to this URL");
  AddIn(cmd, chain, "--timeout-per-step", s.timeout_per_step,
        "Deadline of each attempt of each step (e.g. 10s; default 30s)");
  AddIn(cmd, chain, "--max-attempts", s.max_attempts, "Attempts per step, 1..20 (default 3)");
  AddIn(cmd, chain, "--priority", flags.priority, "low, normal (default) or high");
  AddIn(cmd, chain, "--label", flags.labels, "Label k=v, repeatable");
  AddIn(cmd, chain, "--chain-timeout", flags.chain_timeout,
        "Deadline of the whole chain from submission (e.g. 5m)");
  if (with_idempotency) {
    AddIn(cmd, chain, "--idempotency-key", flags.idempotency_key,
          "Submitting the same key again returns the same chain");
  }
}

// The chain filter of list, retry and cancel.
void AddFilterFlags(CLI::App& cmd, conveyor::client::FilterFlags& f) {
  const std::string filter = "Filter";
  AddIn(cmd, filter, "--state", f.state,
        "pending, running, retrying, succeeded, failed or cancelled");
  AddIn(cmd, filter, "--label", f.labels, "Only chains with label k=v (repeatable: all)");
  AddIn(cmd, filter, "--stage", f.stage,
        "Only chains at (or failed in) a step of this stage: " + conveyor::StageNames());
  AddIn(cmd, filter, "--error-reason", f.error_reason,
        "Only chains whose error has this ErrorInfo reason, or this code name when it "
        "has none (e.g. UNAVAILABLE, DESTINATION_BLOCKED)");
  AddIn(cmd, filter, "--since,--created-after", f.since,
        "Created at or after: RFC 3339 time or a duration ago (1h, 2d)");
  AddIn(cmd, filter, "--before,--created-before", f.before,
        "Created before: RFC 3339 time or duration ago");
  AddIn(cmd, filter, "--ended-after", f.ended_after,
        "Ended at or after: RFC 3339 time or duration ago");
  AddIn(cmd, filter, "--ended-before", f.ended_before,
        "Ended before: RFC 3339 time or duration ago");
}

// retry / cancel: a chain by name, or the chains matching a filter.
CLI::App* AddBulkVerb(CLI::App& app, const std::string& name, const std::string& description,
                      conveyor::client::BulkOptions& options, const std::string& footer) {
  CLI::App* cmd = app.add_subcommand(name, description);
  cmd->add_option("chain", options.chain, "chains/<id> or <id>");
  AddFilterFlags(*cmd, options.filter);
  cmd->add_flag("--dry-run", options.dry_run, "Only print what would change")->group("Filter");
  cmd->add_flag("--yes,-y", options.yes,
                "Do not ask for confirmation (needed when stdin is not a terminal)")
      ->group("Filter");
  AddIn(*cmd, "Filter", "--max", options.max_chains,
        "Act on at most this many matching chains, newest first (server cap: 10000 per call)");
  cmd->footer(footer);
  return cmd;
}

CLI::App* AddMaxWait(CLI::App& cmd, std::string& max_wait) {
  cmd.add_option("--max-wait", max_wait,
                 "Stop following after this long (exit 3, DEADLINE_EXCEEDED); default: no limit");
  return &cmd;
}

}  // namespace

int main(int argc, char** argv) {
  // gRPC logs a failed TLS handshake itself ("E ... Handshake failed ..."),
  // before the call fails; the CLI says it once, in its error line and hint.
  // Setting GRPC_VERBOSITY keeps gRPC's own log, for debugging.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
  CLI::App app{
      "conveyor: submit image chains to a Conveyor orchestrator and follow them.\n"
      "Exit codes: 0 ok; 1 chain failed or cancelled (--wait, watch) or a batch item failed;\n"
      "2 usage error; 3 RPC error (stderr: \"error: <GRPC_CODE>: <message>\")."};
  app.require_subcommand(1);
  app.fallthrough();

  GlobalOptions global;
  conveyor::AddEnvOption(app, "--server", global.server, "Orchestrator address host:port")
      ->capture_default_str();
  conveyor::AddEnvOption(app, "--timeout", global.timeout,
                         "Deadline of each request (not of --wait/watch)")
      ->capture_default_str();
  app.add_flag("--json", global.json,
               "Print the proto's JSON form instead of tables (watch: one event per line)");
  conveyor::AddEnvOption(app, "--tls-ca", global.tls_ca,
                         "PEM CA of the orchestrator's certificate "
                         "(default: the system roots)")
      ->group("TLS");
  conveyor::AddEnvOption(app, "--tls-cert", global.tls_cert, "PEM client certificate (mTLS)")
      ->group("TLS");
  conveyor::AddEnvOption(app, "--tls-key", global.tls_key, "PEM private key of --tls-cert")
      ->group("TLS");
  conveyor::AddEnvOption(
      app, "--tls-server-name", global.tls_server_name,
      "Name to verify in the orchestrator's certificate (default: --server's host)")
      ->group("TLS");
  conveyor::AddEnvFlag(app, "--insecure", global.insecure,
                       "Plaintext, no TLS (only without --tls-* flags)")
      ->group("TLS");
  // No envname: token_source.h reads CONVEYOR_TOKEN and CONVEYOR_TOKEN_FILE
  // itself, to keep their place in the order and name the source in hints.
  // No default shown: --help must never print a token.
  app.add_option("--token", global.token,
                 "Bearer token sent on every call; env CONVEYOR_TOKEN. Other local users can "
                 "read a command line (ps): prefer a token file")
      ->group("Auth");
  app.add_option("--token-file", global.token_file,
                 "File holding the token, mode 0600; env CONVEYOR_TOKEN_FILE; default "
                 "$XDG_CONFIG_HOME/conveyor/token or ~/.config/conveyor/token if it exists. "
                 "Order: --token, CONVEYOR_TOKEN, --token-file, the default file")
      ->group("Auth");

  int exit_code = conveyor::client::kExitOk;

  // submit
  conveyor::client::SubmitOptions submit;
  CLI::App* submit_cmd = app.add_subcommand("submit", "Submit a chain built from flags or a spec");
  submit_cmd->add_option("--url", submit.chain.steps.url, "Download the source image from this URL")
      ->group("Source");
  submit_cmd
      ->add_option("--file", submit.file,
                   "Upload this local image as the source (streamed in 1 MiB chunks)")
      ->group("Source");
  submit_cmd
      ->add_option("--spec", submit.spec_path,
                   "JSON file ('-' = stdin): a SubmitChainRequest or a ChainSpec in proto JSON "
                   "form; chain flags (--label, --priority, ...) apply on top")
      ->group("Source");
  AddStepFlags(*submit_cmd, submit.chain, /*with_idempotency=*/true);
  submit_cmd->add_flag("--wait", submit.wait,
                       "Follow the chain until it ends; exit 0 if it SUCCEEDED, 1 otherwise");
  AddMaxWait(*submit_cmd, submit.max_wait);
  submit_cmd->footer(
      "Examples:\n"
      "  conveyor submit --url https://example.com/a.jpg --resize 800x --filter sepia \\\n"
      "      --upload file:///srv/out --webhook https://example.com/hook --wait\n"
      "  conveyor submit --file photo.jpg --resize 800x600 --fit cover --format webp \\\n"
      "      --upload s3://bucket/thumbs --label team=web --priority high\n"
      "  conveyor submit --spec chain.json --label run=42 --wait\n"
      "  id=$(conveyor submit --url https://example.com/a.jpg --filter grayscale)");
  submit_cmd->callback([&] { exit_code = conveyor::client::RunSubmit(global, submit); });

  // get
  std::string get_chain;
  CLI::App* get_cmd = app.add_subcommand("get", "Show a chain: state, steps, outputs, errors");
  get_cmd->add_option("chain", get_chain, "chains/<id> or <id>")->required();
  get_cmd->footer(
      "Examples:\n  conveyor get chains/4f0c...\n  conveyor get 4f0c... --json | jq .state");
  get_cmd->callback([&] { exit_code = conveyor::client::RunGet(global, get_chain); });

  // watch
  conveyor::client::WatchOptions watch;
  CLI::App* watch_cmd =
      app.add_subcommand("watch", "Follow a chain's events until it ends (progress bar on a TTY)");
  watch_cmd->add_option("chain", watch.chain, "chains/<id> or <id>")->required();
  AddMaxWait(*watch_cmd, watch.max_wait);
  watch_cmd->footer(
      "Exit 0 if the chain SUCCEEDED, 1 if it FAILED or was CANCELLED.\n"
      "Examples:\n  conveyor watch chains/4f0c...\n"
      "  conveyor watch 4f0c... --json | jq -c 'select(.type==\"STEP_SUCCEEDED\")'");
  watch_cmd->callback([&] { exit_code = conveyor::client::RunWatch(global, watch); });

  // cancel
  conveyor::client::BulkOptions cancel;
  AddBulkVerb(app, "cancel",
              "Cancel a chain (stops its running step), or every chain matching a filter", cancel,
              "Without a chain name, cancels every chain matching the filter: a dry run counts "
              "them,\nthen \"Cancel N chains? [y/N]\" on a terminal; scripts pass --yes.\n"
              "Examples:\n  conveyor cancel chains/4f0c...\n"
              "  conveyor cancel --label batch=2026-11-26 --state running --dry-run\n"
              "  conveyor cancel --label batch=2026-11-26 --yes")
      ->callback([&] { exit_code = conveyor::client::RunCancel(global, cancel); });

  // retry
  conveyor::client::BulkOptions retry;
  CLI::App* retry_cmd = AddBulkVerb(
      app, "retry",
      "Resume a FAILED or CANCELLED chain from its first unfinished step, or every chain "
      "matching a filter",
      retry,
      "Without a chain name, retries every chain matching the filter: a dry run counts them,\n"
      "then \"Retry N chains? [y/N]\" on a terminal; scripts pass --yes.\n"
      "Examples:\n  conveyor retry chains/4f0c... --wait\n"
      "  conveyor retry --state failed --stage resize --error-reason UNAVAILABLE --dry-run\n"
      "  conveyor retry --state failed --since 1h --yes");
  retry_cmd->add_flag("--wait", retry.wait, "Follow the chain until it ends (with a chain name)");
  AddMaxWait(*retry_cmd, retry.max_wait);
  retry_cmd->callback([&] { exit_code = conveyor::client::RunRetry(global, retry); });

  // list
  conveyor::client::ListOptions list;
  CLI::App* list_cmd = app.add_subcommand("list", "List chains, newest first");
  AddFilterFlags(*list_cmd, list.filter);
  list_cmd->add_option("--limit", list.limit, "Page size 1..1000 (default 50)");
  list_cmd->add_option("--page-token", list.page_token, "Token printed after the previous page");
  list_cmd->footer(
      "Examples:\n  conveyor list --state failed --since 1h\n"
      "  conveyor list --state failed --stage resize --error-reason UNAVAILABLE\n"
      "  conveyor list --label team=web --limit 10 --json | jq -r '.chains[].name'");
  list_cmd->callback([&] { exit_code = conveyor::client::RunList(global, list); });

  // status
  CLI::App* status_cmd = app.add_subcommand(
      "status", "System status: stages (targets, health, queued, in flight), Redis, replicas");
  status_cmd->footer("Examples:\n  conveyor status\n  conveyor status --json");
  status_cmd->callback([&] { exit_code = conveyor::client::RunStatus(global); });

  // batch
  BatchOptions batch;
  CLI::App* batch_cmd = app.add_subcommand(
      "batch", "Submit one chain per URL / image file and follow them all, with a summary");
  batch_cmd
      ->add_option("input", batch.input,
                   "File with one URL or image path per line ('-' = stdin), or a directory of "
                   "images (.jpg .jpeg .png .webp)")
      ->required();
  batch_cmd->add_option("--concurrency", batch.concurrency, "Chains in flight at once")
      ->capture_default_str();
  AddStepFlags(*batch_cmd, batch.chain, /*with_idempotency=*/false);
  AddMaxWait(*batch_cmd, batch.max_wait);
  batch_cmd->footer(
      "Exit 0 if every chain SUCCEEDED, 1 otherwise (each failure is listed with its reason).\n"
      "Examples:\n"
      "  conveyor batch urls.txt --resize 800x --upload file:///srv/out --concurrency 16\n"
      "  ls photos/*.jpg | conveyor batch - --filter grayscale --upload s3://bucket\n"
      "  conveyor batch ./photos --resize 400x400 --fit cover --format webp --upload file:///out");
  batch_cmd->callback([&] { exit_code = conveyor::client::RunBatch(global, batch); });

  // purge
  conveyor::client::PurgeOptions purge;
  CLI::App* purge_cmd =
      app.add_subcommand("purge", "Delete finished chains by state and age (running ones never)");
  purge_cmd->add_option("--state", purge.state,
                        "succeeded, failed or cancelled (default: all three)");
  purge_cmd->add_option("--older-than", purge.older_than,
                        "Only chains that ended this long ago (e.g. 7d)");
  purge_cmd->add_flag("--dry-run", purge.dry_run, "Only count what would be deleted");
  purge_cmd->add_flag("--yes,-y", purge.yes,
                      "Do not ask \"Purge N chains? [y/N]\" (needed without a terminal)");
  purge_cmd->footer(
      "Examples:\n  conveyor purge --state succeeded --older-than 7d --dry-run\n"
      "  conveyor purge --older-than 30d --yes");
  purge_cmd->callback([&] { exit_code = conveyor::client::RunPurge(global, purge); });

  // token new
  conveyor::client::TokenNewOptions token_new;
  const char* user = std::getenv("USER");
  token_new.principal = user != nullptr && *user != '\0' ? user : "cli";
  token_new.tenant = "default";
  token_new.scopes = "chains.submit,chains.read,chains.cancel";
  CLI::App* token_cmd =
      app.add_subcommand("token", "Bearer tokens for this CLI (no server involved)");
  token_cmd->require_subcommand(1);
  CLI::App* token_new_cmd = token_cmd->add_subcommand(
      "new", "Make a random token (32 bytes, hex) and the orchestrator's tokens-file line for it");
  token_new_cmd->add_option("--principal", token_new.principal, "Who the token speaks for")
      ->capture_default_str();
  token_new_cmd
      ->add_option("--tenant", token_new.tenant, "Whose chains it reaches (* = every tenant)")
      ->capture_default_str();
  token_new_cmd
      ->add_option("--scopes", token_new.scopes,
                   "Comma-separated: chains.submit, chains.read, chains.cancel, admin")
      ->capture_default_str();
  token_new_cmd->add_flag(
      "--write,--save", token_new.write,
      "Save it 0600 to the token file (--token-file, CONVEYOR_TOKEN_FILE, else the default) "
      "instead of printing it; never replaces a file");
  token_new_cmd->footer(
      "stdout: the token (unless --write); stderr: the line to append to the orchestrator's\n"
      "--tokens-file, \"sha256:<hex of the token> <principal> <tenant> <scopes>\".\n"
      "Examples:\n"
      "  conveyor token new --write                 # then send the printed line to the operator\n"
      "  conveyor token new --principal ci --tenant web --scopes chains.submit,chains.read \\\n"
      "      2>>tokens.txt   # the operator's side: the token on stdout, for the CI secret");
  token_new_cmd->callback([&] { exit_code = conveyor::client::RunTokenNew(global, token_new); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; every real parse error is a usage error.
    const int rc = app.exit(e);
    return rc == 0 ? conveyor::client::kExitOk : conveyor::client::kExitUsage;
  }
  return exit_code;
}
