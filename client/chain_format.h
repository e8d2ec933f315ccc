// What `get`, `list`, `status`, `purge` and the bulk `retry` / `cancel`
// print for people, as pure functions of the responses and the current time
// (tests/client/chain_format_test.cc). --json prints ToJson (format.h).
#ifndef CONVEYOR_CLIENT_CHAIN_FORMAT_H_
#define CONVEYOR_CLIENT_CHAIN_FORMAT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "conveyor/v1/chain.pb.h"
#include "conveyor/v1/orchestrator.pb.h"

namespace conveyor::client {

// `conveyor get`: header, steps table, results, error.
std::string FormatChain(const conveyor::v1::Chain& chain, absl::Time now);
// `conveyor list`: a table, then a "next page" hint when there is one. Its
// ERROR column is "<stage>: <reason>", what --stage / --error-reason match.
std::string FormatChainList(const conveyor::v1::ListChainsResponse& response, absl::Time now);
// `conveyor status`: stages table, Redis, replicas, chains by state.
std::string FormatSystemStatus(const conveyor::v1::SystemStatus& status, absl::Time now);
// Whether every stage is SERVING and Redis is reachable; `conveyor status`
// exits 0 only then (1 otherwise).
bool SystemHealthy(const conveyor::v1::SystemStatus& status);
// `conveyor purge`.
std::string FormatPurge(const conveyor::v1::PurgeChainsResponse& response, bool dry_run);

// `conveyor retry` / `conveyor cancel` by filter. `verb` is "retry" or
// "cancel". Counts first ("Retried 37 chains; 3 skipped ..."), then the
// changed names (a sample of up to 100), then each failure with its error.
std::string FormatBulkResult(const conveyor::v1::BulkChainsResponse& response,
                             absl::string_view verb, bool dry_run);

}  // namespace conveyor::client

#endif  // CONVEYOR_CLIENT_CHAIN_FORMAT_H_
