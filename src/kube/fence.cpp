#include "sluice/kube/fence.h"

namespace sluice::kube {

namespace {
thread_local std::shared_ptr<const WriteFence> tlsFence;
}

FenceScope::FenceScope(std::shared_ptr<const WriteFence> fence) : previous_(std::move(tlsFence)) {
    tlsFence = std::move(fence);
}

FenceScope::~FenceScope() {
    tlsFence = std::move(previous_);
}

std::shared_ptr<const WriteFence> currentFence() {
    return tlsFence;
}

void checkFence(const std::string& what) {
    if (!tlsFence) return;
    if (auto reason = tlsFence->closedBecause())
        throw FencedError(what + ": not sent, this replica may no longer write: " + *reason);
}

}  // namespace sluice::kube
