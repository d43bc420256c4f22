#pragma once
// One kind seen through the namespaces a controller may watch. With every namespace it is a
// single informer; in a namespaced installation (RBAC granted per namespace with RoleBindings)
// listing at the cluster scope is forbidden, so it is one informer per namespace instead, as
// Argo CD's namespaced mode does. Cluster-scoped kinds always have one informer.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "sluice/cache/informer.h"

namespace sluice::cache {

class ScopedInformer {
  public:
    // namespaces empty = all namespaces. namespacedKind: whether the kind lives in namespaces.
    // Informers come from (and are shared through) the factory; start them with startAll().
    ScopedInformer(SharedInformerFactory& factory, const kube::GroupVersionKind& gvk,
                   InformerOptions opts, const std::vector<std::string>& namespaces,
                   bool namespacedKind);

    const kube::GroupVersionKind& gvk() const { return gvk_; }
    // Whether objects of namespace ns ("" for a cluster-scoped object) are cached.
    bool covers(const std::string& ns) const;

    void addEventHandler(const EventHandler& handler);
    ObjectPtr get(const std::string& ns, const std::string& name) const;
    std::vector<ObjectPtr> list() const;
    std::vector<ObjectPtr> listNamespace(const std::string& ns) const;

    enum class SyncState { Synced, Pending, Failed };
    struct Sync {
        SyncState state = SyncState::Pending;
        // Failed: why a cache cannot fill (a list or watch the API server refused, 401 or 403),
        // e.g. `configmaps is forbidden: User "..." cannot list resource "configmaps" ...`.
        std::string error;
    };
    // Waits until every informer synced, one was refused, or the timeout passed.
    Sync waitForSync(std::chrono::milliseconds timeout) const;
    bool hasSynced() const;
    // The transport failure (server unreachable) a list or watch last ended with, until one
    // succeeds again: the cache may be stale.
    std::optional<std::string> connectionError() const;
    std::size_t size() const;  // objects cached

  private:
    Informer* informerFor(const std::string& ns) const;
    std::optional<std::string> refusal() const;

    kube::GroupVersionKind gvk_;
    bool allNamespaces_;
    std::vector<std::pair<std::string, Informer*>> informers_;  // by namespace ("" = all)
};

}  // namespace sluice::cache
