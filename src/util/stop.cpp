#include "sluice/util/stop.h"

namespace sluice {

int StopToken::registerCallback(std::function<void()> fn) const {
    if (!state_) return -1;
    std::unique_lock lock(state_->mu);
    if (state_->stopped.load()) {
        lock.unlock();
        fn();
        return -1;
    }
    int id = state_->nextId++;
    state_->callbacks.emplace(id, std::move(fn));
    return id;
}

void StopToken::unregisterCallback(int id) const {
    if (!state_ || id < 0) return;
    std::lock_guard lock(state_->mu);
    state_->callbacks.erase(id);
}

bool StopToken::sleepFor(std::chrono::milliseconds d) const {
    if (!state_) {
        std::mutex m;
        std::condition_variable cv;
        std::unique_lock lock(m);
        cv.wait_for(lock, d);
        return true;
    }
    std::unique_lock lock(state_->mu);
    return !state_->cv.wait_for(lock, d, [&] { return state_->stopped.load(); });
}

void StopSource::requestStop() {
    std::map<int, std::function<void()>> callbacks;
    {
        std::lock_guard lock(state_->mu);
        if (state_->stopped.exchange(true)) return;
        callbacks.swap(state_->callbacks);
    }
    state_->cv.notify_all();
    for (auto& [id, fn] : callbacks) fn();
}

}  // namespace sluice
