#pragma once
// The queue never hands a key to two workers at once, but work on a key can also run outside
// it (a reconcile on the caller's thread): a mutex per key keeps the two from overlapping.
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace sluice::workqueue {

class KeyLocks {
  public:
    // The key's mutex, the same one for every call with that key (kept for the object's life).
    std::shared_ptr<std::mutex> mutexFor(const std::string& key) {
        std::lock_guard lock(mu_);
        auto& slot = locks_[key];
        if (!slot) slot = std::make_shared<std::mutex>();
        return slot;
    }

  private:
    std::mutex mu_;
    std::map<std::string, std::shared_ptr<std::mutex>> locks_;
};

}  // namespace sluice::workqueue
