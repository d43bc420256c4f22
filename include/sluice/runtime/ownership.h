#pragma once
// Which keys (namespace/name of an Application or Canary) this replica may reconcile now. One
// replica owns every key; a fixed split (--shards) owns its shard's; live sharding by Leases
// (leader::ShardCoordinator) owns the keys of the slots whose Leases it holds.
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/runtime/shard.h"

namespace sluice::runtime {

// Held for the length of one reconcile of a key. While it is held the owner does not hand the
// key's share over, and the claim's scope may fence the thread's writes (see kube/fence.h).
// An empty claim: the key is another replica's now.
class Claim {
  public:
    Claim() = default;
    explicit Claim(std::shared_ptr<void> hold) : hold_(std::move(hold)) {}
    explicit operator bool() const { return hold_ != nullptr; }

  private:
    std::shared_ptr<void> hold_;
};

class Ownership {
  public:
    virtual ~Ownership() = default;
    // Claim key for one reconcile, on the calling thread.
    virtual Claim claim(std::string_view key) = 0;
    // Whether key is this replica's now (no claim taken), for work that writes nothing.
    virtual bool owns(std::string_view key) const = 0;
    // Adds a callback (one per controller) called with a predicate over keys whenever this
    // replica gains keys it did not own, so the controller can queue them; the previous owner
    // may have left them half done.
    using KeysGained = std::function<void(const std::function<bool(std::string_view)>& gained)>;
    virtual void onKeysGained(KeysGained callback) = 0;
};

// Every key, or a fixed shard's keys. Never gains any.
class StaticOwnership final : public Ownership {
  public:
    explicit StaticOwnership(Shard shard = {}) : shard_(shard) {}
    Claim claim(std::string_view key) override {
        return shard_.owns(key) ? Claim(std::make_shared<int>(0)) : Claim();
    }
    bool owns(std::string_view key) const override { return shard_.owns(key); }
    void onKeysGained(KeysGained) override {}

  private:
    Shard shard_;
};

// Live sharding: which of `members` (identities) owns slot `slot`, by rendezvous hashing, so
// that a member joining or leaving moves only the slots it takes or leaves. "" without members.
std::string ownerOfSlot(int slot, const std::vector<std::string>& members);

}  // namespace sluice::runtime
