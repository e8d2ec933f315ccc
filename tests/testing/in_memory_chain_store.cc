#include "tests/testing/in_memory_chain_store.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/stage_registry.h"
#include "common/status_details.h"
#include "orchestrator/chain_filter.h"

namespace conveyor::orchestrator::testing {
namespace {

using conveyor::v1::Chain;
using conveyor::v1::State;

absl::Status Unavailable() { return absl::UnavailableError("in-memory store: unavailable"); }

}  // namespace

class InMemoryChainStore::Feed : public CancelFeed {
 public:
  explicit Feed(InMemoryChainStore* store) : store_(store) {}
  ~Feed() override { store_->Unsubscribe(this); }

  absl::StatusOr<absl::optional<CancelNotice>> Next(absl::Duration wait) override {
    absl::MutexLock lock(&store_->mu_);
    if (store_->unavailable_) {
      subscribed_ = false;
      notices_.clear();
      return Unavailable();
    }
    if (!subscribed_) {
      subscribed_ = true;
      store_->feeds_.insert(this);
      return CancelNotice{CancelNotice::Kind::kSubscribed, ""};
    }
    const absl::Time until = absl::Now() + wait;
    while (notices_.empty() && !store_->unavailable_ && absl::Now() < until) {
      store_->changed_.WaitWithDeadline(&store_->mu_, until);
    }
    if (notices_.empty()) return absl::nullopt;
    CancelNotice notice{CancelNotice::Kind::kCancelled, notices_.front()};
    notices_.pop_front();
    return notice;
  }

  void Publish(const std::string& chain_id) {
    if (subscribed_) notices_.push_back(chain_id);
  }
  void Drop() {
    subscribed_ = false;
    notices_.clear();
  }

 private:
  InMemoryChainStore* store_;
  bool subscribed_ = false;
  std::deque<std::string> notices_;
};

InMemoryChainStore::InMemoryChainStore(const Clock& clock, InMemoryChainStoreOptions options)
    : clock_(clock), options_(options) {}

InMemoryChainStore::~InMemoryChainStore() = default;

void InMemoryChainStore::SetUnavailable(bool unavailable) {
  absl::MutexLock lock(&mu_);
  unavailable_ = unavailable;
  if (unavailable) {
    for (Feed* feed : feeds_) feed->Drop();
    feeds_.clear();
  }
  changed_.SignalAll();
}

std::unique_ptr<CancelFeed> InMemoryChainStore::NewCancelFeed() {
  return std::make_unique<Feed>(this);
}

void InMemoryChainStore::Unsubscribe(Feed* feed) {
  absl::MutexLock lock(&mu_);
  feeds_.erase(feed);
}

int InMemoryChainStore::PendingEntries() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(pending_.size());
}

absl::Status InMemoryChainStore::CheckAvailable() const {
  return unavailable_ ? Unavailable() : absl::OkStatus();
}

absl::Status InMemoryChainStore::CheckTenantQuotas(const Chain& chain, int64_t incoming) const {
  const TenantQuotas& quotas = options_.tenant_quotas;
  const std::string tenant = ChainTenant(chain);
  auto held = [](const std::map<std::string, int64_t>& m, const std::string& t) {
    auto it = m.find(t);
    return it == m.end() ? int64_t{0} : it->second;
  };
  const int64_t in_flight = held(tenant_in_flight_, tenant);
  if (quotas.max_chains_in_flight > 0 && in_flight + 1 > quotas.max_chains_in_flight) {
    return TenantQuotaError("chains_in_flight", tenant, quotas.max_chains_in_flight,
                            std::to_string(in_flight));
  }
  const int64_t bytes = held(tenant_blob_bytes_, tenant);
  if (incoming >= 0 && quotas.max_stored_bytes > 0 &&
      (bytes >= quotas.max_stored_bytes || bytes + incoming > quotas.max_stored_bytes)) {
    return TenantQuotaError("stored_bytes", tenant, quotas.max_stored_bytes,
                            std::to_string(bytes));
  }
  return absl::OkStatus();
}

void InMemoryChainStore::SetBlob(Record& record, int index, std::string bytes) {
  DeleteBlob(record, index);
  blob_bytes_ += static_cast<int64_t>(bytes.size());
  tenant_blob_bytes_[ChainTenant(record.stored.chain)] += static_cast<int64_t>(bytes.size());
  record.blobs[index] = std::move(bytes);
}

void InMemoryChainStore::DeleteBlob(Record& record, int index) {
  auto it = record.blobs.find(index);
  if (it == record.blobs.end()) return;
  blob_bytes_ -= static_cast<int64_t>(it->second.size());
  tenant_blob_bytes_[ChainTenant(record.stored.chain)] -= static_cast<int64_t>(it->second.size());
  record.blobs.erase(it);
}

void InMemoryChainStore::Enqueue(QueueEntry entry) {
  // Ids count per stream, as Redis stream ids do: entries of two
  // priorities can share one (QueueEntry::key() tells them apart).
  entry.id = std::to_string(next_entry_[entry.priority]++);
  entry.stream = absl::StrCat("memory:", conveyor::v1::Priority_Name(entry.priority));
  ready_[static_cast<int>(entry.priority)].push_back(std::move(entry));
}

void InMemoryChainStore::Count(const std::vector<std::pair<std::string, int>>& counters) {
  for (const auto& [field, n] : counters) stats_[field] += n;
}

void InMemoryChainStore::ApplyEffects(const Transition& t, const ApplyExtras& extras) {
  const Chain& c = t.chain;
  const std::string id = ChainIdFromName(c.name());
  Record& record = chains_[id];
  record.stored.chain = c;
  const SideEffects& fx = t.effects;
  if (fx.enqueue_step >= 0) record.stored.queue_token = c.version();
  for (const conveyor::v1::ChainEvent& e : fx.events) {
    record.events.push_back(e);
    record.events.back().set_event_id(std::to_string(record.events.size()));
  }
  if (fx.output_blob >= 0 && extras.output_blob != nullptr) {
    SetBlob(record, fx.output_blob, *extras.output_blob);
  }
  if (fx.enqueue_step >= 0) {
    QueueEntry entry;
    entry.chain_id = id;
    entry.step = fx.enqueue_step;
    entry.token = c.version();
    entry.kind = StepKind(c.spec().steps(fx.enqueue_step));
    entry.input_blob = InputBlobIndex(c.spec(), fx.enqueue_step);
    entry.priority = c.spec().priority() == conveyor::v1::PRIORITY_UNSPECIFIED
                         ? conveyor::v1::PRIORITY_NORMAL
                         : c.spec().priority();
    if (fx.retry_at.has_value()) {
      delayed_.push_back(Delayed{*fx.retry_at, std::move(entry)});
    } else {
      Enqueue(std::move(entry));
    }
  }
  if (extras.ack != nullptr) pending_.erase(extras.ack->key());
  if (fx.delete_blobs) {
    while (!record.blobs.empty()) DeleteBlob(record, record.blobs.begin()->first);
  }
  if (fx.expire && !record.blobs.empty()) {
    record.blobs_expire = FromProtoTime(c.end_time()) + options_.failed_blob_retention;
  } else if (fx.persist) {
    record.blobs_expire.reset();
  }
  Count(fx.counters);
  Count(extras.counters);
  // A chain starting or resuming is one more in flight; ending, one less.
  if (t.previous_state == conveyor::v1::STATE_UNSPECIFIED || fx.persist) {
    ++tenant_in_flight_[ChainTenant(c)];
  }
  if (fx.expire) --tenant_in_flight_[ChainTenant(c)];
  if (fx.publish_cancel) {
    for (Feed* feed : feeds_) feed->Publish(id);
  }
  changed_.SignalAll();
}

absl::StatusOr<SubmitOutcome> InMemoryChainStore::Submit(const Transition& t,
                                                         const std::string& spec_hash,
                                                         const std::string* source_bytes) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  const Chain& c = t.chain;
  const std::string id = ChainIdFromName(c.name());
  // Idempotency keys are per tenant (tenant names have no ':').
  const std::string idempotency = absl::StrCat(ChainTenant(c), ":", c.idempotency_key());
  if (!c.idempotency_key().empty()) {
    auto it = idempotency_.find(idempotency);
    if (it != idempotency_.end()) {
      const auto& [existing_id, existing_hash] = it->second;
      if (existing_hash != spec_hash) {
        return absl::AlreadyExistsError(absl::StrCat("idempotency_key \"", c.idempotency_key(),
                                                     "\" was used for chains/", existing_id,
                                                     " with a different spec"));
      }
      return SubmitOutcome{chains_[existing_id].stored.chain, true};
    }
  }
  const int64_t incoming = source_bytes == nullptr ? 0 : static_cast<int64_t>(source_bytes->size());
  if (options_.max_blob_bytes > 0 &&
      (blob_bytes_ >= options_.max_blob_bytes || blob_bytes_ + incoming > options_.max_blob_bytes)) {
    return BlobStoreFullError(std::to_string(blob_bytes_));
  }
  if (absl::Status s = CheckTenantQuotas(c, incoming); !s.ok()) return s;
  if (chains_.count(id) > 0) return ChainExistsError("submit");
  if (!c.idempotency_key().empty()) idempotency_[idempotency] = {id, spec_hash};
  Record& record = chains_[id];
  record.stored.chain = c;
  if (source_bytes != nullptr) SetBlob(record, 0, *source_bytes);
  ApplyEffects(t, ApplyExtras{});
  return SubmitOutcome{c, false};
}

absl::StatusOr<StoredChain> InMemoryChainStore::Load(const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  auto it = chains_.find(id);
  if (it == chains_.end()) return absl::NotFoundError(absl::StrCat("chains/", id, " not found"));
  return it->second.stored;
}

absl::StatusOr<std::vector<absl::optional<State>>> InMemoryChainStore::States(
    const std::vector<std::string>& ids) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  std::vector<absl::optional<State>> out;
  for (const std::string& id : ids) {
    auto it = chains_.find(id);
    if (it == chains_.end()) {
      out.push_back(absl::nullopt);
    } else {
      out.push_back(it->second.stored.chain.state());
    }
  }
  return out;
}

absl::StatusOr<std::pair<StoredChain, absl::optional<std::string>>>
InMemoryChainStore::LoadWithBlob(const std::string& id, int blob) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  auto it = chains_.find(id);
  if (it == chains_.end()) return absl::NotFoundError(absl::StrCat("chains/", id, " not found"));
  absl::optional<std::string> bytes;
  if (auto b = it->second.blobs.find(blob); b != it->second.blobs.end()) bytes = b->second;
  return std::make_pair(it->second.stored, std::move(bytes));
}

absl::Status InMemoryChainStore::Apply(int64_t expected_version, const Transition& t,
                                       const ApplyExtras& extras) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  auto it = chains_.find(ChainIdFromName(t.chain.name()));
  if (it == chains_.end()) return absl::NotFoundError(absl::StrCat(t.chain.name(), ": chain not found"));
  const int64_t stored = it->second.stored.chain.version();
  if (stored != expected_version) return StaleVersionError(expected_version, std::to_string(stored));
  for (int blob : extras.required_blobs) {
    if (it->second.blobs.count(blob) == 0) return BlobGoneError(t.chain.name());
  }
  if (t.effects.persist) {
    if (absl::Status s = CheckTenantQuotas(t.chain, -1); !s.ok()) return s;
  }
  ApplyEffects(t, extras);
  return absl::OkStatus();
}

absl::StatusOr<EventBatch> InMemoryChainStore::Events(const std::string& id,
                                                      const std::string& after_id, int count,
                                                      absl::Duration block) {
  size_t after = 0;
  if (!after_id.empty() && !absl::SimpleAtoi(after_id, &after)) {
    return InvalidField("after_event_id", "want an event id from ChainEvent.event_id");
  }
  absl::MutexLock lock(&mu_);
  auto available = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = chains_.find(id);
    return unavailable_ || (it != chains_.end() && it->second.events.size() > after);
  };
  const absl::Time until = absl::Now() + block;
  while (!available() && absl::Now() < until) changed_.WaitWithDeadline(&mu_, until);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  EventBatch batch;
  auto it = chains_.find(id);
  if (it == chains_.end()) return batch;
  for (size_t i = after; i < it->second.events.size() && static_cast<int>(batch.events.size()) < count;
       ++i) {
    batch.events.push_back(it->second.events[i]);
  }
  return batch;
}

absl::StatusOr<std::vector<int>> InMemoryChainStore::MissingBlobs(const std::string& id,
                                                                  const std::vector<int>& blobs) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  std::vector<int> missing;
  auto it = chains_.find(id);
  for (int blob : blobs) {
    if (it == chains_.end() || it->second.blobs.count(blob) == 0) missing.push_back(blob);
  }
  return missing;
}

absl::StatusOr<int> InMemoryChainStore::FreeExpiredBlobs(absl::Time now, int max_chains) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  int freed = 0;
  for (auto& [id, record] : chains_) {
    if (freed >= max_chains) break;
    if (!record.blobs_expire.has_value() || *record.blobs_expire > now) continue;
    while (!record.blobs.empty()) DeleteBlob(record, record.blobs.begin()->first);
    record.blobs_expire.reset();
    ++freed;
  }
  return freed;
}

}  // namespace conveyor::orchestrator::testing
