#pragma once
// Live sharding between controller replicas, coordinated through Leases only.
//
// Every replica keeps a membership Lease (<group>-member-<suffix>), renewed every retryPeriod.
// The keys (namespace/name) are hashed into `slots` slots; slot n is guarded by the Lease
// <group>-slot-<n>, whose holder is the one replica that may reconcile its keys. The live
// members are those whose membership Lease this replica saw change within its
// leaseDurationSeconds (no trust in other machines' clocks, as client-go's leader election), and
// each slot belongs to one of them by rendezvous hashing, so a member joining or leaving moves
// only its share.
//   - A replica takes a slot assigned to it when the slot Lease is free, or held by a member
//     that is not live (checked with a fresh read first): a replica that dies loses its slots
//     one lease duration after its last renewal.
//   - A replica that sees a slot assigned elsewhere stops taking claims on it, waits for the
//     claims in flight, then releases the Lease (holder ""), and the new owner takes it.
//   - Every Lease write carries the resourceVersion read, so two replicas never both win one.
//   - Fencing: a claim installs a kube::WriteFence on its thread. Once the membership Lease was
//     not renewed for renewDeadline (< leaseDuration), or the slot was lost, every write fails
//     before it is sent: a partitioned replica stops writing before anyone may take its slots.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/kube/client.h"
#include "sluice/runtime/ownership.h"
#include "sluice/util/clock.h"

namespace sluice::leader {

inline constexpr const char* kShardingLabel = "sluice.io/sharding";           // = group
inline constexpr const char* kShardingRoleLabel = "sluice.io/sharding-role";  // member | slot

struct ShardingConfig {
    std::string leaseNamespace = "sluice";
    std::string group = "sluice-controller";  // Lease name prefix and kShardingLabel's value
    std::string identity;                     // unique per replica; default defaultIdentity()
    int slots = 32;
    std::chrono::milliseconds leaseDuration{15000};
    std::chrono::milliseconds renewDeadline{10000};
    std::chrono::milliseconds retryPeriod{2000};
    const Clock* clock = nullptr;  // nullptr = system clock
};

// What this replica sees now.
struct ShardingState {
    std::vector<std::string> members;  // live members' identities, sorted, this one included
    std::vector<int> heldSlots;
    bool writable = false;  // membership renewed within the renew deadline
};

class ShardCoordinator final : public runtime::Ownership {
  public:
    // `client` is used for the Leases only; give it a short request timeout and no client-side
    // rate limit, as the leader election's.
    ShardCoordinator(kube::KubeClient& client, ShardingConfig config);
    ~ShardCoordinator() override;  // stop()
    ShardCoordinator(const ShardCoordinator&) = delete;
    ShardCoordinator& operator=(const ShardCoordinator&) = delete;

    // Watches the group's Leases and runs the membership/slot loop on a thread of its own.
    void start();
    // Stops the loop, releases every slot once its claims ended (waiting up to `drain`) and
    // deletes the membership Lease, so the others take over at once. Idempotent.
    void stop(std::chrono::milliseconds drain = std::chrono::seconds(5));

    runtime::Claim claim(std::string_view key) override;
    bool owns(std::string_view key) const override;
    void onKeysGained(KeysGained callback) override;

    ShardingState state() const;
    const std::string& identity() const;
    std::string memberLeaseName() const;
    // The membership Lease's uid once created (for owner references); "" before.
    std::string memberLeaseUid() const;
    int slotOf(std::string_view key) const;

    // One pass of the loop (public for tests): read the Leases seen, renew the membership when
    // due, then take, keep or hand back each slot.
    void step();

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

// A Lease name part from an identity: lower case, [a-z0-9-], at most 40 characters.
std::string leaseNameSuffix(const std::string& identity);

}  // namespace sluice::leader
