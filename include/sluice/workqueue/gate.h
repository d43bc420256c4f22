#pragma once
// Informers outlive the controllers that register handlers on them and cannot drop a handler:
// the handlers reach a controller's queue through a gate (held by shared_ptr), which the
// controller closes when it stops.
#include <mutex>
#include <string>

#include "sluice/workqueue/workqueue.h"

namespace sluice::workqueue {

class Gate {
  public:
    explicit Gate(WorkQueue& queue) : queue_(&queue) {}
    Gate(const Gate&) = delete;
    Gate& operator=(const Gate&) = delete;

    // queue.add(key), or nothing once closed.
    void add(const std::string& key) {
        std::lock_guard lock(mu_);
        if (queue_) queue_->add(key);
    }
    // After this returns no add() reaches the queue. Idempotent.
    void close() {
        std::lock_guard lock(mu_);
        queue_ = nullptr;
    }

  private:
    std::mutex mu_;
    WorkQueue* queue_;
};

}  // namespace sluice::workqueue
