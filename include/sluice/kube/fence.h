#pragma once
// Fencing of writes: a thread working for a Lease holder (a shard slot) installs a fence, and
// every write request it makes, to any cluster, first asks the fence whether the Lease is still
// held. Once it is not (the renew deadline passed: another replica may soon take the Lease),
// the write fails with FencedError before it is sent, so two replicas never write for the same
// key at once, also across a network partition. Reads are never fenced.
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace sluice::kube {

class WriteFence {
  public:
    virtual ~WriteFence() = default;
    // Why writes must stop now (e.g. "slot 3's Lease was not renewed for 10s"); none: go on.
    virtual std::optional<std::string> closedBecause() const = 0;
};

class FencedError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Installs `fence` for the calling thread until destroyed (the previous one is restored).
class FenceScope {
  public:
    explicit FenceScope(std::shared_ptr<const WriteFence> fence);
    ~FenceScope();
    FenceScope(const FenceScope&) = delete;
    FenceScope& operator=(const FenceScope&) = delete;

  private:
    std::shared_ptr<const WriteFence> previous_;
};

// The calling thread's fence (null: none), to carry it to helper threads.
std::shared_ptr<const WriteFence> currentFence();
// Throws FencedError when the calling thread's fence is closed. `what` names the request.
void checkFence(const std::string& what);

}  // namespace sluice::kube
