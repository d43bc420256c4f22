#pragma once
// A cache of shared, immutable values, bounded by the objects they hold rather than by entries.
#include <cstddef>
#include <list>
#include <map>
#include <mutex>
#include <string>

namespace sluice::util {

// Least recently used first out, bounded by the number of objects held (not entries), so that
// memory stays flat however many Applications there are. The newest entry is always kept,
// even alone above the bound. Keys name immutable content (a commit's files), so entries never
// go stale, only old.
template <class Value>
class LruCache {
  public:
    explicit LruCache(std::size_t maxObjects) : maxObjects_(maxObjects) {}
    Value get(const std::string& key) {
        std::lock_guard lock(mu_);
        auto it = index_.find(key);
        if (it == index_.end()) return nullptr;
        lru_.splice(lru_.begin(), lru_, it->second);
        return it->second->value;
    }
    void put(const std::string& key, Value value, std::size_t objects) {
        std::lock_guard lock(mu_);
        if (auto it = index_.find(key); it != index_.end()) {
            held_ -= it->second->objects;
            lru_.erase(it->second);
            index_.erase(it);
        }
        lru_.push_front(Entry{key, std::move(value), objects});
        index_[key] = lru_.begin();
        held_ += objects;
        while (held_ > maxObjects_ && lru_.size() > 1) {
            held_ -= lru_.back().objects;
            index_.erase(lru_.back().key);
            lru_.pop_back();
        }
    }

  private:
    struct Entry {
        std::string key;
        Value value;
        std::size_t objects;
    };
    std::size_t maxObjects_;
    std::size_t held_ = 0;
    std::mutex mu_;
    std::list<Entry> lru_;  // most recent first
    std::map<std::string, typename std::list<Entry>::iterator> index_;
};

}  // namespace sluice::util
