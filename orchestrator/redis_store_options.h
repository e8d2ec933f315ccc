// What RedisChainStore keeps and for how long (the flags of the same names).
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_STORE_OPTIONS_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_STORE_OPTIONS_H_

#include <cstdint>

#include "absl/time/time.h"
#include "orchestrator/chain_store.h"

namespace conveyor::orchestrator {

struct RedisChainStoreOptions {
  // TTL of finished chains (and of idempotency keys).
  absl::Duration retention = absl::Hours(24 * 7);
  // How long the image blobs of a FAILED or CANCELLED chain are kept (for
  // RetryChain) before FreeExpiredBlobs frees them; capped at `retention`.
  absl::Duration failed_blob_retention = absl::Hours(24);
  // Submit refuses new chains while the stored blob bytes reach this; 0 = no
  // cap. Admitted chains still store their step outputs, so the bytes held
  // can pass the cap by what the running chains produce.
  int64_t max_blob_bytes = int64_t{512} << 20;
  // The same for each tenant's chains and bytes.
  TenantQuotas tenant_quotas;
};

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_STORE_OPTIONS_H_
