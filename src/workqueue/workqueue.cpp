#include "sluice/workqueue/workqueue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

namespace sluice::workqueue {

WorkQueue::WorkQueue(Options opts)
    : opts_(opts),
      clock_(opts.clock ? *opts.clock : SystemClock::instance()),
      realClock_(opts.clock == nullptr || dynamic_cast<const SystemClock*>(opts.clock) != nullptr) {
    if (opts_.pollInterval <= std::chrono::milliseconds::zero())
        opts_.pollInterval = std::chrono::milliseconds(1);
}

WorkQueue::~WorkQueue() {
    shutdown();
    std::lock_guard wlock(workersMu_);
    for (auto& t : workers_) {
        if (t.get_id() == std::this_thread::get_id()) {
            t.detach();
        } else if (t.joinable()) {
            t.join();
        }
    }
}

void WorkQueue::add(const std::string& key) {
    {
        std::lock_guard lock(mu_);
        if (shuttingDown_) return;
        if (!dirty_.insert(key).second) return;
        ++stats_.adds;
        // A key being processed is re-queued by done(), never handed to a second worker.
        if (processing_.count(key)) return;
        queue_.push_back(key);
    }
    cv_.notify_one();
}

void WorkQueue::addAfter(const std::string& key, std::chrono::nanoseconds delay) {
    if (delay <= std::chrono::nanoseconds::zero()) {
        add(key);
        return;
    }
    {
        std::lock_guard lock(mu_);
        if (shuttingDown_) return;
        auto due = clock_.now() + std::chrono::duration_cast<Clock::TimePoint::duration>(delay);
        auto it = delayedDue_.find(key);
        if (it != delayedDue_.end()) {
            if (it->second <= due) return;
            // Replace by the earlier due time.
            auto [lo, hi] = delayed_.equal_range(it->second);
            for (auto d = lo; d != hi; ++d) {
                if (d->second == key) {
                    delayed_.erase(d);
                    break;
                }
            }
            it->second = due;
        } else {
            delayedDue_.emplace(key, due);
        }
        delayed_.emplace(due, key);
    }
    // A waiting worker must recompute how long to sleep.
    cv_.notify_all();
}

void WorkQueue::addRateLimited(const std::string& key) {
    std::chrono::milliseconds delay;
    {
        std::lock_guard lock(mu_);
        if (shuttingDown_) return;
        uint32_t& n = requeues_[key];
        delay = opts_.backoff.delay(n);
        if (n < UINT32_MAX) ++n;
        ++stats_.retries;
    }
    addAfter(key, delay);
}

void WorkQueue::forget(const std::string& key) {
    std::lock_guard lock(mu_);
    requeues_.erase(key);
}

int WorkQueue::numRequeues(const std::string& key) const {
    std::lock_guard lock(mu_);
    auto it = requeues_.find(key);
    return it == requeues_.end() ? 0 : static_cast<int>(std::min<uint32_t>(it->second, INT32_MAX));
}

void WorkQueue::promoteDueLocked() {
    if (delayed_.empty()) return;
    auto now = clock_.now();
    while (!delayed_.empty() && delayed_.begin()->first <= now) {
        std::string key = std::move(delayed_.begin()->second);
        delayed_.erase(delayed_.begin());
        delayedDue_.erase(key);
        if (!dirty_.insert(key).second) continue;
        ++stats_.adds;
        if (!processing_.count(key)) queue_.push_back(std::move(key));
    }
}

std::size_t WorkQueue::dueNotQueuedLocked() const {
    // Delayed keys already due count as queued even before a worker promotes them.
    std::size_t n = 0;
    if (shuttingDown_) return 0;
    auto now = clock_.now();
    for (auto it = delayed_.begin(); it != delayed_.end() && it->first <= now; ++it) {
        if (!dirty_.count(it->second) && !processing_.count(it->second)) ++n;
    }
    return n;
}

std::size_t WorkQueue::len() const {
    std::lock_guard lock(mu_);
    return queue_.size() + dueNotQueuedLocked();
}

Stats WorkQueue::stats() const {
    std::lock_guard lock(mu_);
    Stats s = stats_;
    std::size_t due = dueNotQueuedLocked();
    s.depth = queue_.size() + due;
    s.inFlight = processing_.size();
    auto now = clock_.now();
    s.delayed = static_cast<std::size_t>(std::count_if(
        delayed_.begin(), delayed_.end(), [&](const auto& d) { return d.first > now; }));
    return s;
}

void WorkQueue::waitLocked(std::unique_lock<std::mutex>& lock) {
    if (delayed_.empty()) {
        cv_.wait(lock);
        return;
    }
    if (realClock_) {
        // A copy: wait_until re-reads its argument after waking, when the node may be gone.
        const Clock::TimePoint due = delayed_.begin()->first;
        cv_.wait_until(lock, due);
    } else {
        // The fake clock's due time says nothing about real time: re-read it regularly.
        cv_.wait_for(lock, opts_.pollInterval);
    }
}

std::optional<std::string> WorkQueue::get() {
    std::unique_lock lock(mu_);
    for (;;) {
        if (shuttingDown_ && !draining_) return std::nullopt;
        if (!shuttingDown_) promoteDueLocked();
        if (!queue_.empty()) break;
        if (shuttingDown_) return std::nullopt;  // draining and nothing ready is left
        waitLocked(lock);
    }
    std::string key = std::move(queue_.front());
    queue_.pop_front();
    dirty_.erase(key);
    processing_.insert(key);
    return key;
}

void WorkQueue::done(const std::string& key) {
    bool requeued = false;
    {
        std::lock_guard lock(mu_);
        if (processing_.erase(key) == 0) return;
        ++stats_.processed;
        if (dirty_.count(key)) {
            queue_.push_back(key);
            requeued = true;
        }
    }
    if (requeued) cv_.notify_one();
    doneCv_.notify_all();
}

void WorkQueue::run(int workers, std::function<bool(const std::string&)> fn) {
    std::lock_guard wlock(workersMu_);
    for (int i = 0; i < workers; ++i) {
        workers_.emplace_back([this, fn] {
            while (auto key = get()) {
                bool ok = false;
                try {
                    ok = fn(*key);
                } catch (const std::exception& e) {
                    spdlog::error("workqueue: processing {} threw: {}", *key, e.what());
                } catch (...) {
                    spdlog::error("workqueue: processing {} threw a non-standard exception", *key);
                }
                if (ok) {
                    forget(*key);
                } else {
                    addRateLimited(*key);
                }
                done(*key);
            }
        });
    }
}

void WorkQueue::joinWorkers() {
    std::vector<std::thread> workers;
    {
        std::lock_guard wlock(workersMu_);
        workers.swap(workers_);
    }
    const auto self = std::this_thread::get_id();
    std::vector<std::thread> keep;
    for (auto& t : workers) {
        // A worker calling shutdown() cannot join itself: it exits at its next get() and is
        // joined by the destructor (or detached if the destructor runs on it).
        if (t.get_id() == self) {
            keep.push_back(std::move(t));
        } else if (t.joinable()) {
            t.join();
        }
    }
    if (!keep.empty()) {
        std::lock_guard wlock(workersMu_);
        for (auto& t : keep) workers_.push_back(std::move(t));
    }
}

void WorkQueue::shutdown() {
    {
        std::lock_guard lock(mu_);
        shuttingDown_ = true;
        draining_ = false;
        // Dropped keys are forgotten too: nothing will hand them out any more.
        for (const auto& k : queue_) dirty_.erase(k);
        queue_.clear();
        delayed_.clear();
        delayedDue_.clear();
    }
    cv_.notify_all();
    doneCv_.notify_all();
    joinWorkers();
}

void WorkQueue::shutdownAndDrain() {
    {
        std::unique_lock lock(mu_);
        if (!shuttingDown_) {
            shuttingDown_ = true;
            draining_ = true;
            delayed_.clear();
            delayedDue_.clear();
            // Re-adds of keys in flight are refused from now on; forget those already made.
            for (const auto& k : processing_) dirty_.erase(k);
        }
        cv_.notify_all();
        doneCv_.wait(lock, [&] { return !draining_ || (queue_.empty() && processing_.empty()); });
    }
    cv_.notify_all();
    joinWorkers();
}

bool WorkQueue::shuttingDown() const {
    std::lock_guard lock(mu_);
    return shuttingDown_;
}

}  // namespace sluice::workqueue
