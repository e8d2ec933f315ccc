// Which chains a ListChains request or a bulk action (CancelChains,
// RetryChains) selects: validation of the proto filter into a ListQuery, and
// the match of one chain against it. Pure logic, no Redis, no gRPC: the store
// picks an index for the indexed fields (state, one label, create time) and
// applies ChainMatches to every chain it reads, so the answer does not depend
// on the index chosen.
#ifndef CONVEYOR_ORCHESTRATOR_CHAIN_FILTER_H_
#define CONVEYOR_ORCHESTRATOR_CHAIN_FILTER_H_

#include <string>

#include "absl/status/statusor.h"
#include "conveyor/v1/chain.pb.h"
#include "conveyor/v1/orchestrator.pb.h"
#include "orchestrator/chain_store.h"

namespace conveyor::orchestrator {

// The stage of the step the chain is at: its first step that has not
// SUCCEEDED (for a FAILED chain the step that failed, for a CANCELLED one the
// step it stopped at). STAGE_KIND_UNSPECIFIED when every step succeeded.
conveyor::v1::StageKind CurrentStage(const conveyor::v1::Chain& chain);

// The reason of the chain's error: the google.rpc.ErrorInfo reason of
// Chain.error, else that of the error of its current step (the scheduler
// keeps details on the step, and only code and message on the chain), else
// the code name of Chain.error ("UNAVAILABLE"). "" when the chain has no
// error (it runs, or SUCCEEDED).
std::string ChainErrorReason(const conveyor::v1::Chain& chain);

// True if `chain` passes every filter of `query` (page size and token
// aside). Labels must all be present with equal values; error_reason
// compares case-insensitively.
bool ChainMatches(const ListQuery& query, const conveyor::v1::Chain& chain);

// The filters of a ListChainsRequest (page size and token too), validated:
// INVALID_ARGUMENT naming the field and the bad value.
absl::StatusOr<ListQuery> ListQueryFromRequest(const conveyor::v1::ListChainsRequest& request);

// A bulk action's filter, validated like ListQueryFromRequest (fields named
// "filter.<field>"); an empty filter is INVALID_ARGUMENT, since it would
// select every chain.
absl::StatusOr<ListQuery> ListQueryFromFilter(const conveyor::v1::ChainFilter& filter);

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_CHAIN_FILTER_H_
