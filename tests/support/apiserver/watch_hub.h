#pragma once
// Per-watch event queues. The store pushes events while holding its lock (so each watcher sees
// a gap-free, ordered stream); the HTTP thread of the watch pops and writes them to its socket
// without any store lock held.
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>

#include "apiserver/selectors.h"

namespace sluice::testing {

struct WatchEvent {
    std::string type;  // ADDED MODIFIED DELETED BOOKMARK ERROR
    nlohmann::json object;
};

class Watcher {
  public:
    Watcher(std::string storageKey, std::string ns, LabelSelector ls, FieldSelector fs)
        : storageKey(std::move(storageKey)),
          ns(std::move(ns)),
          labels(std::move(ls)),
          fields(std::move(fs)) {}

    const std::string storageKey;
    const std::string ns;  // "" = all namespaces / cluster-scoped
    const LabelSelector labels;
    const FieldSelector fields;
    uint64_t minRv = 0;  // events at or below this revision are not delivered

    bool selects(const nlohmann::json& obj) const;

    void push(WatchEvent ev);
    // Waits until an event arrives, the watcher is closed or `until`; moves queued events into
    // out. Returns false once closed and drained.
    bool next(std::deque<WatchEvent>& out, std::chrono::steady_clock::time_point until);
    void close();
    bool closed() const;

  private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<WatchEvent> queue_;
    bool closed_ = false;
};

}  // namespace sluice::testing
