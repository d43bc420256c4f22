#pragma once
// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics so Sluice
// replicas behave like every other controller in the cluster:
//   - a candidate takes the Lease when it is free (no holder) or expired, judged by how long
//     *this* process has seen the same record unchanged (no trust in other machines' clocks);
//   - every write carries the resourceVersion read, so two candidates never both win;
//   - the leader renews every retryPeriod; when it cannot renew for renewDeadline it stops
//     leading (and the process should exit before another replica takes over);
//   - on shutdown the leader releases the Lease (empty holder) so a standby takes over at once.
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "sluice/kube/client.h"
#include "sluice/util/clock.h"
#include "sluice/util/stop.h"

namespace sluice::leader {

struct Config {
    std::string leaseNamespace = "sluice";
    std::string leaseName = "sluice-controller";
    std::string identity;  // unique per replica: pod name + random suffix
    std::chrono::milliseconds leaseDuration{15000};
    std::chrono::milliseconds renewDeadline{10000};
    std::chrono::milliseconds retryPeriod{2000};
    const Clock* clock = nullptr;  // nullptr = system clock
};

// The Lease's spec as read or written.
struct LeaseRecord {
    std::string holderIdentity;
    int leaseDurationSeconds = 0;
    std::string acquireTime;  // MicroTime, RFC 3339 with microseconds
    std::string renewTime;
    int leaseTransitions = 0;

    static LeaseRecord fromLease(const nlohmann::json& lease);
    nlohmann::json toSpec() const;
    bool operator==(const LeaseRecord&) const = default;
};

// "2026-12-04T23:10:00.123456Z": metav1.MicroTime as the API server parses it.
std::string formatMicroTime(std::chrono::system_clock::time_point t);

class LeaderElector {
  public:
    struct Callbacks {
        std::function<void()> onStartedLeading;
        // Leadership lost (renew deadline passed, or the Lease was taken). Not called on a
        // release by stop().
        std::function<void()> onStoppedLeading;
        // Whenever the observed holder changes (including to ourselves).
        std::function<void(const std::string& holder)> onNewLeader;
    };

    LeaderElector(kube::KubeClient& client, Config config, Callbacks callbacks);
    ~LeaderElector();  // stop()
    LeaderElector(const LeaderElector&) = delete;
    LeaderElector& operator=(const LeaderElector&) = delete;

    // Runs the acquire/renew loop on a thread of its own.
    void start();
    // Stops the loop; a leader releases the Lease first (best effort). Idempotent.
    void stop();

    bool isLeader() const { return leading_.load(); }
    std::string currentHolder() const;
    const std::string& identity() const { return config_.identity; }

    // One acquire-or-renew attempt (the loop's step; public for tests). True when this
    // candidate holds the Lease afterwards.
    bool tryAcquireOrRenew();
    // Gives the Lease up if held (holder "", leaseDurationSeconds 1).
    void release();

  private:
    void loop(StopToken stop);
    const Clock& clock() const;

    kube::KubeClient& client_;
    Config config_;
    Callbacks callbacks_;
    std::atomic<bool> leading_{false};
    mutable std::mutex mu_;
    LeaseRecord observed_;
    std::string observedResourceVersion_;
    Clock::TimePoint observedAt_{};
    bool haveObserved_ = false;
    Clock::TimePoint lastRenew_{};
    StopSource stop_;
    std::thread thread_;
};

// "<hostname>_<random hex>", as client-go's examples build identities.
std::string defaultIdentity();

}  // namespace sluice::leader
