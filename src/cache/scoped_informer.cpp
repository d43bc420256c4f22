#include "sluice/cache/scoped_informer.h"

#include <algorithm>
#include <thread>

namespace sluice::cache {

ScopedInformer::ScopedInformer(SharedInformerFactory& factory, const kube::GroupVersionKind& gvk,
                               InformerOptions opts, const std::vector<std::string>& namespaces,
                               bool namespacedKind)
    : gvk_(gvk), allNamespaces_(namespaces.empty() || !namespacedKind) {
    if (allNamespaces_) {
        opts.ns.clear();
        informers_.emplace_back("", &factory.informerFor(gvk, opts));
        return;
    }
    std::vector<std::string> sorted = namespaces;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    for (const auto& ns : sorted) {
        opts.ns = ns;
        informers_.emplace_back(ns, &factory.informerFor(gvk, opts));
    }
}

bool ScopedInformer::covers(const std::string& ns) const {
    return informerFor(ns) != nullptr;
}

Informer* ScopedInformer::informerFor(const std::string& ns) const {
    if (allNamespaces_) return informers_.front().second;
    for (const auto& [name, informer] : informers_)
        if (name == ns) return informer;
    return nullptr;
}

void ScopedInformer::addEventHandler(const EventHandler& handler) {
    for (auto& [ns, informer] : informers_) informer->addEventHandler(handler);
}

ObjectPtr ScopedInformer::get(const std::string& ns, const std::string& name) const {
    Informer* informer = informerFor(ns);
    return informer ? informer->store().get(ns, name) : nullptr;
}

std::vector<ObjectPtr> ScopedInformer::list() const {
    if (informers_.size() == 1) return informers_.front().second->store().list();
    std::vector<ObjectPtr> all;
    for (const auto& [ns, informer] : informers_) {
        auto part = informer->store().list();
        all.insert(all.end(), std::make_move_iterator(part.begin()),
                   std::make_move_iterator(part.end()));
    }
    return all;
}

std::vector<ObjectPtr> ScopedInformer::listNamespace(const std::string& ns) const {
    Informer* informer = informerFor(ns);
    return informer ? informer->store().listNamespace(ns) : std::vector<ObjectPtr>{};
}

bool ScopedInformer::hasSynced() const {
    return std::all_of(informers_.begin(), informers_.end(),
                       [](const auto& entry) { return entry.second->hasSynced(); });
}

std::optional<std::string> ScopedInformer::refusal() const {
    for (const auto& [ns, informer] : informers_) {
        if (informer->hasSynced()) continue;
        auto error = informer->lastError();
        if (error && (error->code == 401 || error->code == 403)) return error->message;
    }
    return std::nullopt;
}

std::size_t ScopedInformer::size() const {
    std::size_t n = 0;
    for (const auto& [ns, informer] : informers_) n += informer->store().size();
    return n;
}

std::optional<std::string> ScopedInformer::connectionError() const {
    for (const auto& [ns, informer] : informers_) {
        auto error = informer->lastError();
        if (error && error->code == 0) return error->message;
    }
    return std::nullopt;
}

ScopedInformer::Sync ScopedInformer::waitForSync(std::chrono::milliseconds timeout) const {
    // A refused list is retried with backoff and may yet succeed (a RoleBinding created
    // later), so it is reported, not fatal; polled because the informer only signals sync.
    constexpr auto kSlice = std::chrono::milliseconds(20);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (hasSynced()) return {SyncState::Synced, ""};
        if (auto why = refusal()) return {SyncState::Failed, *why};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= std::chrono::milliseconds::zero()) return {SyncState::Pending, ""};
        for (const auto& [ns, informer] : informers_) {
            if (informer->hasSynced()) continue;
            informer->waitForSync(std::min(left, kSlice));
            break;
        }
    }
}

}  // namespace sluice::cache
