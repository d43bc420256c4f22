#include "sluice/runtime/runtime.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace sluice::runtime {

namespace {

// etcd revisions in practice; nothing when not a decimal number that fits.
std::optional<unsigned long long> asNumber(const std::string& s) {
    if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
    if (errno == ERANGE) return std::nullopt;
    return v;
}

}  // namespace

bool resourceVersionReached(const std::string& have, const std::string& want) {
    if (want.empty()) return true;
    auto h = asNumber(have), w = asNumber(want);
    if (h && w) return *h >= *w;
    return have == want;
}

Runtime::Runtime(workqueue::Options queueOptions, int workers)
    : queue_(std::move(queueOptions)),
      gate_(std::make_shared<workqueue::Gate>(queue_)),
      workers_(std::max(1, workers)) {}

Runtime::~Runtime() {
    stop();
}

void Runtime::start(Reconcile reconcile) {
    {
        std::lock_guard lock(lifecycleMu_);
        if (started_ || stopped_) return;
        started_ = true;
        reconcile_ = std::move(reconcile);
    }
    queue_.run(workers_, [this](const std::string& key) { return process(key); });
}

void Runtime::stop() {
    {
        std::lock_guard lock(lifecycleMu_);
        if (stopped_) return;
        stopped_ = true;
    }
    stopSource_.requestStop();
    gate_->close();
    // Running reconciles finish (a sync stops after its current wave); queued keys are dropped.
    queue_.shutdown();
}

std::size_t Runtime::queueDepth() const {
    return queue_.len();
}

// A worker's turn with key: false asks the queue for a rate-limited retry.
bool Runtime::process(const std::string& key) {
    const Result result = runNow(key, reconcile_);
    if (result.backoff) return false;
    if (result.requeueAfter) queue_.addAfter(key, *result.requeueAfter);
    return true;
}

}  // namespace sluice::runtime
