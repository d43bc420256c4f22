#pragma once
// Keeps a Store in sync with the API server for one kind (in one namespace or all, with an
// optional selector): list, then watch from the list's resourceVersion, forever.
//
// Resumption: a dropped or closed watch is resumed from the last resourceVersion seen (events
// and bookmarks advance it). 410 Gone (the version was compacted away) triggers a fresh list
// that is reconciled against the store, reporting exactly the adds, updates and deletes that
// were missed. Any other error is retried with capped exponential backoff. An event whose
// resourceVersion is not newer than the stored object's is ignored, so a replayed stream never
// produces duplicate notifications.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "sluice/cache/store.h"
#include "sluice/kube/client.h"
#include "sluice/util/backoff.h"
#include "sluice/util/stop.h"

namespace sluice::cache {

// A watch lifetime as client-go picks one: 300 to 600 seconds, at random.
int randomWatchTimeoutSeconds();

// Rewrites an object before it is stored (e.g. erase metadata.managedFields to save memory).
// Must keep metadata.name, metadata.namespace and metadata.resourceVersion.
using Transform = std::function<void(nlohmann::json&)>;

// Drops metadata.managedFields, usually the largest part of an object nobody reads from cache.
void dropManagedFields(nlohmann::json& obj);

// Keeps metadata.managedFields as its compact JSON text (a string) instead of a JSON tree: about
// a tenth of the memory, for caches that read it seldom (fieldset::parseManagedFields reads
// either form). An object so transformed is a cache entry, never a body to send to the API.
void packManagedFields(nlohmann::json& obj);

struct ReflectorOptions {
    std::string ns;  // "" = all namespaces (or a cluster-scoped kind)
    std::string labelSelector;
    std::string fieldSelector;
    Transform transform;  // empty = store objects intact
    // Members the transform keeps packed (as JSON text): watch events deliver them as text
    // already, without building their tree (kube::WatchOptions::rawMembers).
    std::vector<kube::MemberPath> rawMembers;
    ExponentialBackoff backoff{std::chrono::milliseconds(200), 2.0,
                               std::chrono::milliseconds(30000)};
    int64_t pageSize = 500;       // list page size; 0 = let the server decide
    int watchTimeoutSeconds = 0;  // server-side watch lifetime; 0 = 300-600 s at random
};

// Why the last list or watch failed, kept until one succeeds: callers report it (a forbidden
// list is a missing RBAC grant, not a cache that is merely slow to sync).
struct ReflectorError {
    int code = 0;  // HTTP status; 0 for a transport failure
    std::string reason;
    std::string message;
    bool forbidden() const { return code == 403; }
};

// Notifications, called on the thread running Reflector::run() right after the store
// changed, with Reflector::deliveryMutex() held. Exceptions are not caught here.
struct ReflectorHandlers {
    std::function<void(const ObjectPtr&)> onAdd;
    std::function<void(const ObjectPtr& oldObj, const ObjectPtr& newObj)> onUpdate;
    std::function<void(const ObjectPtr& lastKnown)> onDelete;
    std::function<void()> onSynced;  // once, after the first list has been applied
};

class Reflector {
  public:
    Reflector(kube::KubeClient& client, kube::GroupVersionKind gvk, Store& store,
              ReflectorOptions opts = {}, ReflectorHandlers handlers = {});

    // Lists and watches until stop fires. Returns promptly on stop (a list in progress is
    // finished first). Never throws for API or transport errors: it logs and retries.
    void run(const StopToken& stop);

    // Store changes and their notifications happen under this mutex; hold it to read the
    // store and act on it without racing with the next change. Recursive so a handler can
    // take it again.
    std::recursive_mutex& deliveryMutex() { return deliveryMu_; }

    bool hasSynced() const { return synced_.load(); }
    // The resourceVersion the next watch would start from ("" before the first list).
    std::string lastResourceVersion() const;
    const kube::GroupVersionKind& gvk() const { return gvk_; }
    // Number of lists performed (1 + relists after 410 Gone), for tests and metrics.
    uint64_t listCount() const { return lists_.load(); }
    // The failure of the last list or watch attempt; empty once one succeeded.
    std::optional<ReflectorError> lastError() const;

  private:
    void listAndReconcile();
    // Returns true when the watch made progress (received events or lasted a while).
    bool watchOnce(const StopToken& stop);
    void applyEvent(kube::WatchEvent& ev);  // moves the object into the store
    void setResourceVersion(const std::string& rv);
    void setError(std::optional<ReflectorError> error);

    kube::KubeClient& client_;
    kube::GroupVersionKind gvk_;
    Store& store_;
    ReflectorOptions opts_;
    ReflectorHandlers handlers_;

    std::recursive_mutex deliveryMu_;
    mutable std::mutex rvMu_;
    std::string rv_;
    std::optional<ReflectorError> error_;  // guarded by rvMu_
    std::atomic<bool> synced_{false};
    std::atomic<uint64_t> lists_{0};
    // The current watch delivered an event (set from the watch callback, read by run()).
    std::atomic<bool> watchProgress_{false};
};

// Kubernetes resourceVersions are opaque, but every real server uses increasing integers.
// True when a is newer than b: numerically when both are integers, else when they differ.
bool resourceVersionNewer(const std::string& a, const std::string& b);

}  // namespace sluice::cache
