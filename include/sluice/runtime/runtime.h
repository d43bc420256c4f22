#pragma once
// The part every controller shares: a work queue of keys, its workers, one reconcile at a time
// per key, start and stop. A controller supplies one function, key -> Result, as
// controller-runtime's Reconciler does, and feeds keys through gate() from its informers.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "sluice/util/stop.h"
#include "sluice/workqueue/gate.h"
#include "sluice/workqueue/key_locks.h"
#include "sluice/workqueue/workqueue.h"

namespace sluice::runtime {

// What one reconcile asks for next.
struct Result {
    // Reconcile the key again after this; none: only when an event adds it again.
    std::optional<std::chrono::nanoseconds> requeueAfter;
    // The reconcile failed: retry with the queue's per-key backoff (requeueAfter is ignored).
    bool backoff = false;
};

// Whether a cache at resource version `have` already shows a write answered with `want`.
// Resource versions are opaque strings; numeric ones (every real API server's) are compared as
// numbers, any other only for equality.
bool resourceVersionReached(const std::string& have, const std::string& want);

class Runtime {
  public:
    using Reconcile = std::function<Result(const std::string& key)>;

    Runtime(workqueue::Options queueOptions, int workers);
    // stop()
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // Starts the workers, which call `reconcile` for each key (serialized per key with
    // runNow()). Only the first call counts, and none after stop().
    void start(Reconcile reconcile);
    // Stops taking keys: closes the gate, asks running work to stop (stopToken()) and joins the
    // workers after their current reconcile; queued keys are dropped. Idempotent.
    void stop();
    bool stopped() const { return stopped_; }

    // Runs `reconcile` for key on the calling thread, never at the same time as a worker (or
    // another runNow) on the same key. Requeues nothing.
    template <class Fn>
    auto runNow(const std::string& key, Fn&& reconcile) {
        const auto lock = keyLocks_.mutexFor(key);
        std::lock_guard serial(*lock);
        return reconcile(key);
    }

    // Where informer handlers add keys; closed (adds ignored) once stopped.
    const std::shared_ptr<workqueue::Gate>& gate() const { return gate_; }
    void add(const std::string& key) { gate_->add(key); }
    StopToken stopToken() const { return stopSource_.token(); }
    std::size_t queueDepth() const;

  private:
    bool process(const std::string& key);

    workqueue::WorkQueue queue_;
    std::shared_ptr<workqueue::Gate> gate_;
    workqueue::KeyLocks keyLocks_;
    StopSource stopSource_;
    int workers_;
    Reconcile reconcile_;
    std::mutex lifecycleMu_;
    bool started_ = false;
    bool stopped_ = false;
};

// Calls one replaceable function with each record (tests and metrics watch reconciles).
template <class Record>
class Observer {
  public:
    void set(std::function<void(const Record&)> fn) {
        std::lock_guard lock(mu_);
        fn_ = std::move(fn);
    }
    void notify(const Record& record) const {
        std::function<void(const Record&)> fn;
        {
            std::lock_guard lock(mu_);
            fn = fn_;
        }
        if (fn) fn(record);
    }

  private:
    mutable std::mutex mu_;
    std::function<void(const Record&)> fn_;
};

// Our writes to an object that the watch cache may not show yet. A reconcile that runs right
// after a write reads the cache, which can lag behind: until the cache reaches the version the
// server answered, the reconcile overlays what was written instead of acting on older fields.
template <class Writes>
class PendingWrites {
  public:
    // A write to key answered with resourceVersion rv: `update` edits what is kept. Answers
    // without a version, or older than one kept, change nothing.
    void record(const std::string& key, const std::string& rv,
                const std::function<void(Writes&)>& update) {
        if (rv.empty()) return;
        std::lock_guard lock(mu_);
        Entry& e = entries_[key];
        if (!resourceVersionReached(rv, e.resourceVersion)) return;
        e.resourceVersion = rv;
        update(e.writes);
    }
    // What a cache at cachedRv does not show yet, with the version that shows it; nothing when
    // it shows every recorded write (which are then forgotten).
    std::optional<std::pair<std::string, Writes>> unseen(const std::string& key,
                                                         const std::string& cachedRv) {
        std::lock_guard lock(mu_);
        auto it = entries_.find(key);
        if (it == entries_.end()) return std::nullopt;
        if (resourceVersionReached(cachedRv, it->second.resourceVersion)) {
            entries_.erase(it);
            return std::nullopt;
        }
        return std::make_pair(it->second.resourceVersion, it->second.writes);
    }
    void forget(const std::string& key) {
        std::lock_guard lock(mu_);
        entries_.erase(key);
    }

  private:
    struct Entry {
        std::string resourceVersion;
        Writes writes{};
    };
    std::mutex mu_;
    std::map<std::string, Entry> entries_;
};

}  // namespace sluice::runtime
