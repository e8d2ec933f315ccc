// How the Redis store writes: every change of a chain is one EVALSHA of
// redis/scripts/apply.lua, built here from a Transition (its version check
// and all its effects), and the script's answer turned into a status.
// Shared by the parts of RedisChainStore; nothing else includes it.
#ifndef CONVEYOR_ORCHESTRATOR_REDIS_TRANSITION_SCRIPT_H_
#define CONVEYOR_ORCHESTRATOR_REDIS_TRANSITION_SCRIPT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "conveyor/v1/chain.pb.h"
#include "orchestrator/chain_store.h"
#include "orchestrator/redis/redis_connection.h"
#include "orchestrator/redis/redis_keys.h"
#include "orchestrator/redis_store_options.h"

namespace conveyor::orchestrator {

inline constexpr conveyor::v1::State kAllStates[] = {conveyor::v1::PENDING, conveyor::v1::RUNNING,
                                conveyor::v1::RETRYING, conveyor::v1::SUCCEEDED,
                                conveyor::v1::FAILED, conveyor::v1::CANCELLED};
inline constexpr conveyor::v1::Priority kPriorities[] = {
    conveyor::v1::PRIORITY_HIGH, conveyor::v1::PRIORITY_NORMAL, conveyor::v1::PRIORITY_LOW};

inline int64_t ToMs(absl::Time t) { return absl::ToUnixMillis(t); }
int64_t CreateMs(const conveyor::v1::Chain& chain);

// Builds one apply.lua call: KEYS deduplicated, ops referencing them by index.
class ScriptCall {
 public:
  explicit ScriptCall(const std::string& meta_key) { Key(meta_key); }
  int Key(const std::string& key) {
    auto [it, inserted] = index_.emplace(key, static_cast<int>(keys_.size()) + 1);
    if (inserted) keys_.push_back(key);
    return it->second;
  }
  void Op(absl::string_view cmd, const std::string& key, std::vector<std::string> args) {
    OpIndex(cmd, key.empty() ? 0 : Key(key), std::move(args));
  }
  void OpIndex(absl::string_view cmd, int key_index, std::vector<std::string> args) {
    ops_.emplace_back(cmd);
    ops_.push_back(std::to_string(key_index));
    ops_.push_back(std::to_string(args.size()));
    for (std::string& a : args) ops_.push_back(std::move(a));
    ++count_;
  }
  // Blob writes and deletes go through BLOBSET/BLOBDEL so that
  // cv:{q}:blob_bytes stays exact.
  // A blob of a chain of `tenant`, counted in the store's bytes and the
  // tenant's.
  void BlobSet(const std::string& key, const std::string& bytes, const std::string& tenant) {
    const int counter = Key(std::string(kBlobBytesKey));
    const int tenant_counter = Key(TenantBlobBytesKey(tenant));
    Op("BLOBSET", key, {bytes, std::to_string(counter), std::to_string(tenant_counter)});
  }
  void BlobDel(const std::string& key, const std::string& tenant) {
    const int counter = Key(std::string(kBlobBytesKey));
    const int tenant_counter = Key(TenantBlobBytesKey(tenant));
    Op("BLOBDEL", key, {std::to_string(counter), std::to_string(tenant_counter)});
  }
  // Precondition: counter `key` + `incoming` stays within `limit` (0 = no
  // limit); else the script answers {'QUOTA', held, quota} for a named
  // tenant quota, {'FULL', held} without one.
  void Cap(const std::string& key, int64_t limit, int64_t incoming, std::string quota = "") {
    if (limit <= 0) return;
    std::vector<std::string> args = {std::to_string(limit), std::to_string(incoming)};
    if (!quota.empty()) args.push_back(std::move(quota));
    Op("BLOBCAP", key, std::move(args));
  }
  std::vector<std::string> Args(std::string mode, std::string a2, std::string a3) const {
    std::vector<std::string> args = {std::move(mode), std::move(a2), std::move(a3),
                                     std::to_string(count_)};
    args.insert(args.end(), ops_.begin(), ops_.end());
    return args;
  }
  const std::vector<std::string>& keys() const { return keys_; }

 private:
  std::vector<std::string> keys_;
  std::map<std::string, int> index_;
  std::vector<std::string> ops_;
  int count_ = 0;
};

// apply.lua's answer ({'OK'}, {'MISSING'}, {'STALE', v}, ...) as a status;
// `what` names the operation in messages, `t` the chain (for quota errors).
absl::Status ScriptOutcome(const RedisValue& reply, const std::string& what,
                           const conveyor::v1::Chain* chain = nullptr,
                           const TenantQuotas& quotas = {});
// The tenant quota checks of a submit (`incoming` source bytes) or a resume
// (incoming = -1: chains only) of `chain`.
void AddTenantQuotaChecks(ScriptCall& call, const conveyor::v1::Chain& chain, int64_t incoming,
                          const TenantQuotas& quotas);

// Adds the effects of `t` (and `extras`) to `call`.
void AddTransitionOps(ScriptCall& call, const Transition& t, const ApplyExtras& extras,
                      const RedisChainStoreOptions& options, bool is_new);

// A chain record from HMGET pb qtoken; NOT_FOUND if `pb` is nil.
absl::StatusOr<StoredChain> ParseStored(const RedisValue& pb, const RedisValue& token,
                                        const std::string& id);

}  // namespace conveyor::orchestrator

#endif  // CONVEYOR_ORCHESTRATOR_REDIS_TRANSITION_SCRIPT_H_
