#include "sluice/cache/store.h"

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include "sluice/kube/types.h"

namespace sluice::cache {

std::string storeKey(const std::string& ns, const std::string& name) {
    return ns.empty() ? name : ns + "/" + name;
}

std::string storeKeyOf(const nlohmann::json& obj) {
    return storeKey(kube::namespaceOf(obj), kube::nameOf(obj));
}

ObjectPtr Store::get(const std::string& ns, const std::string& name) const {
    std::shared_lock lock(mu_);
    auto it = objects_.find(Key{ns, name});
    return it == objects_.end() ? nullptr : it->second;
}

std::pair<std::string, std::string> splitStoreKey(const std::string& key) {
    auto slash = key.find('/');
    if (slash == std::string::npos) return {"", key};
    return {key.substr(0, slash), key.substr(slash + 1)};
}

ObjectPtr Store::getByKey(const std::string& key) const {
    auto [ns, name] = splitStoreKey(key);
    return get(ns, name);
}

std::vector<ObjectPtr> Store::list() const {
    std::shared_lock lock(mu_);
    std::vector<ObjectPtr> out;
    out.reserve(objects_.size());
    for (const auto& [k, v] : objects_) out.push_back(v);
    return out;
}

std::vector<ObjectPtr> Store::listNamespace(const std::string& ns) const {
    std::shared_lock lock(mu_);
    std::vector<ObjectPtr> out;
    // Keys sort by namespace first, so one namespace is a contiguous range.
    for (auto it = objects_.lower_bound(Key{ns, ""}); it != objects_.end() && it->first.first == ns;
         ++it) {
        out.push_back(it->second);
    }
    return out;
}

std::vector<std::string> Store::keys() const {
    std::shared_lock lock(mu_);
    std::vector<std::string> out;
    out.reserve(objects_.size());
    for (const auto& [k, v] : objects_) out.push_back(storeKey(k.first, k.second));
    return out;
}

std::size_t Store::size() const {
    std::shared_lock lock(mu_);
    return objects_.size();
}

void Store::indexLocked(Index& idx, const Key& key, const nlohmann::json& obj) {
    for (auto& value : idx.fn(obj)) idx.byValue[value].insert(key);
}

void Store::unindexLocked(Index& idx, const Key& key, const nlohmann::json& obj) {
    for (auto& value : idx.fn(obj)) {
        auto it = idx.byValue.find(value);
        if (it == idx.byValue.end()) continue;
        it->second.erase(key);
        if (it->second.empty()) idx.byValue.erase(it);
    }
}

void Store::addIndex(const std::string& name, IndexFunc fn) {
    if (!fn) throw std::invalid_argument("Store::addIndex: empty index function for " + name);
    Index idx{std::move(fn), {}};
    std::unique_lock lock(mu_);
    for (const auto& [k, v] : objects_) indexLocked(idx, k, *v);
    indexes_[name] = std::move(idx);
}

std::vector<ObjectPtr> Store::byIndex(const std::string& name, const std::string& value) const {
    std::shared_lock lock(mu_);
    auto idx = indexes_.find(name);
    if (idx == indexes_.end()) throw std::out_of_range("Store: no index named " + name);
    std::vector<ObjectPtr> out;
    auto keys = idx->second.byValue.find(value);
    if (keys == idx->second.byValue.end()) return out;
    out.reserve(keys->second.size());
    for (const auto& k : keys->second) {
        auto it = objects_.find(k);
        if (it != objects_.end()) out.push_back(it->second);
    }
    return out;
}

std::vector<std::string> Store::indexValues(const std::string& name) const {
    std::shared_lock lock(mu_);
    auto idx = indexes_.find(name);
    if (idx == indexes_.end()) throw std::out_of_range("Store: no index named " + name);
    std::vector<std::string> out;
    out.reserve(idx->second.byValue.size());
    for (const auto& [v, keys] : idx->second.byValue) out.push_back(v);
    std::sort(out.begin(), out.end());
    return out;
}

ObjectPtr Store::upsert(ObjectPtr obj) {
    if (!obj) throw std::invalid_argument("Store::upsert: null object");
    Key key{kube::namespaceOf(*obj), kube::nameOf(*obj)};
    std::unique_lock lock(mu_);
    // Compute the new index values first so a throwing index function changes nothing.
    std::vector<std::vector<std::string>> values;
    values.reserve(indexes_.size());
    for (auto& [name, idx] : indexes_) values.push_back(idx.fn(*obj));
    auto& slot = objects_[key];
    ObjectPtr old = std::move(slot);
    std::size_t i = 0;
    for (auto& [name, idx] : indexes_) {
        if (old) unindexLocked(idx, key, *old);
        for (auto& value : values[i++]) idx.byValue[value].insert(key);
    }
    slot = std::move(obj);
    return old;
}

ObjectPtr Store::erase(const std::string& ns, const std::string& name) {
    Key key{ns, name};
    std::unique_lock lock(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) return nullptr;
    ObjectPtr old = std::move(it->second);
    objects_.erase(it);
    for (auto& [n, idx] : indexes_) unindexLocked(idx, key, *old);
    return old;
}

void Store::clear() {
    std::unique_lock lock(mu_);
    objects_.clear();
    for (auto& [n, idx] : indexes_) idx.byValue.clear();
}

}  // namespace sluice::cache
