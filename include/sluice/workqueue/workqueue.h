#pragma once
// A de-duplicating work queue for controllers, modelled on client-go's rate-limiting queue.
//
// Keys (usually "namespace/name") move through three states:
//   queued     waiting for a worker; adding it again is a no-op;
//   processing handed out by get(); adding it again marks it dirty so that done() re-queues it
//              once, which guarantees no key is ever processed by two workers at the same time;
//   delayed    addAfter()/addRateLimited(); becomes queued when clock.now() passes its due time.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sluice/util/backoff.h"
#include "sluice/util/clock.h"

namespace sluice::workqueue {

struct Options {
    // Time source for delays; nullptr = SystemClock::instance(). With any other clock (e.g. a
    // FakeClock) waiting workers re-read now() every pollInterval of real time.
    const Clock* clock = nullptr;
    std::chrono::milliseconds pollInterval{5};
    // Per-key delay of addRateLimited: backoff.delay(numRequeues(key)).
    ExponentialBackoff backoff{std::chrono::milliseconds(5), 2.0,
                               std::chrono::milliseconds(1000000)};
};

// Counters for metrics. Totals only grow; the rest are the current sizes.
struct Stats {
    uint64_t adds = 0;         // add() calls that queued or dirtied a key (duplicates excluded)
    uint64_t retries = 0;      // addRateLimited() calls
    uint64_t processed = 0;    // done() calls
    std::size_t depth = 0;     // queued keys (= len())
    std::size_t inFlight = 0;  // keys handed out and not yet done()
    std::size_t delayed = 0;   // keys waiting for their due time
};

class WorkQueue {
  public:
    explicit WorkQueue(Options opts = {});
    // shutdown() and joins the run() workers.
    ~WorkQueue();
    WorkQueue(const WorkQueue&) = delete;
    WorkQueue& operator=(const WorkQueue&) = delete;

    // Queues key unless it is already queued (or marks it dirty while it is processing).
    // Ignored after shutdown.
    void add(const std::string& key);
    // Queues key once delay has passed on the clock; if the key is already delayed the earlier
    // due time wins. delay <= 0 is add().
    void addAfter(const std::string& key, std::chrono::nanoseconds delay);
    // addAfter(key, backoff.delay(numRequeues(key))) and counts one more requeue for key.
    void addRateLimited(const std::string& key);
    // Resets key's requeue count (call after a success).
    void forget(const std::string& key);
    int numRequeues(const std::string& key) const;

    // Number of queued keys (ready for a worker).
    std::size_t len() const;
    Stats stats() const;

    // Manual use: blocks until a key is ready and returns it (the caller must call done(key)),
    // or returns nullopt once the queue is shut down (after shutdownAndDrain: once nothing
    // ready is left).
    std::optional<std::string> get();
    void done(const std::string& key);

    // Starts `workers` threads that loop get() -> fn(key) -> done(key). fn returning true
    // forget()s the key; false (or throwing) addRateLimited()s it. May be called once.
    void run(int workers, std::function<bool(const std::string&)> fn);

    // Stops accepting keys, drops queued and delayed keys, wakes every get(), and joins the
    // run() workers (each finishes the key it is processing). Idempotent.
    void shutdown();
    // Stops accepting keys (re-adds included) but keeps handing out keys already queued;
    // returns when the queue is empty and every handed-out key is done(), with run() workers
    // joined. Delayed keys that are not yet due are dropped.
    void shutdownAndDrain();
    bool shuttingDown() const;

  private:
    void promoteDueLocked();
    std::size_t dueNotQueuedLocked() const;
    void waitLocked(std::unique_lock<std::mutex>& lock);
    void joinWorkers();

    Options opts_;
    const Clock& clock_;
    bool realClock_;

    mutable std::mutex mu_;
    std::condition_variable cv_;      // ready keys, shutdown, delayed keys added
    std::condition_variable doneCv_;  // processing set shrank (drain)
    std::deque<std::string> queue_;
    std::unordered_set<std::string> dirty_;       // queued, or to be re-queued on done()
    std::unordered_set<std::string> processing_;  // handed out by get()
    std::multimap<Clock::TimePoint, std::string> delayed_;
    std::unordered_map<std::string, Clock::TimePoint> delayedDue_;  // key -> its due time
    std::unordered_map<std::string, uint32_t> requeues_;
    bool shuttingDown_ = false;
    bool draining_ = false;
    Stats stats_;

    std::mutex workersMu_;
    std::vector<std::thread> workers_;
};

}  // namespace sluice::workqueue
