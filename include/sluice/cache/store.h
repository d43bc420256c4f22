#pragma once
// Thread-safe in-memory object cache keyed by namespace/name, with named secondary indexes.
// Objects are immutable shared snapshots: readers keep what they got even after the store
// moves on, and no lock is held while they use it.
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sluice::cache {

using ObjectPtr = std::shared_ptr<const nlohmann::json>;

// Returns the index values of an object (e.g. its owner's UID, a label value). Runs under the
// store's write lock: it must be fast, pure and must not call back into the store.
using IndexFunc = std::function<std::vector<std::string>(const nlohmann::json&)>;

// "ns/name", or "name" for cluster-scoped objects (the same form as kube::ObjectKey::str()).
std::string storeKey(const std::string& ns, const std::string& name);
std::string storeKeyOf(const nlohmann::json& obj);
// The inverse of storeKey: {namespace, name}, the namespace "" when key has no '/'.
std::pair<std::string, std::string> splitStoreKey(const std::string& key);

class Store {
  public:
    Store() = default;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // nullptr when absent.
    ObjectPtr get(const std::string& ns, const std::string& name) const;
    ObjectPtr getByKey(const std::string& key) const;
    // Sorted by namespace, then name.
    std::vector<ObjectPtr> list() const;
    std::vector<ObjectPtr> listNamespace(const std::string& ns) const;
    std::vector<std::string> keys() const;
    std::size_t size() const;

    // Adds (or replaces) a named index and indexes every object already stored.
    void addIndex(const std::string& name, IndexFunc fn);
    // Objects whose index `name` produced `value`, sorted like list(). Throws
    // std::out_of_range for an unknown index name.
    std::vector<ObjectPtr> byIndex(const std::string& name, const std::string& value) const;
    // Every value index `name` currently holds, sorted.
    std::vector<std::string> indexValues(const std::string& name) const;

    // Writes; the Reflector is the normal writer. Both return the previous object (or nullptr).
    ObjectPtr upsert(ObjectPtr obj);
    ObjectPtr erase(const std::string& ns, const std::string& name);
    void clear();

  private:
    using Key = std::pair<std::string, std::string>;  // namespace, name
    struct Index {
        IndexFunc fn;
        std::unordered_map<std::string, std::set<Key>> byValue;
    };
    void indexLocked(Index& idx, const Key& key, const nlohmann::json& obj);
    void unindexLocked(Index& idx, const Key& key, const nlohmann::json& obj);

    mutable std::shared_mutex mu_;
    std::map<Key, ObjectPtr> objects_;
    std::map<std::string, Index> indexes_;
};

}  // namespace sluice::cache
