#pragma once
// The object store and the REST semantics of kube-apiserver on top of it: one global revision
// counter (like etcd's), bounded event history for watch replay, per-watch queues, and the
// in-process "controllers" (garbage collector, namespace and CRD cleanup, workload status).
// One mutex guards everything; it is never held while writing to a socket.
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "apiserver/api_server.h"
#include "apiserver/resources.h"
#include "apiserver/watch_hub.h"

namespace sluice::testing {

using nlohmann::json;

struct WriteOptions {
    bool dryRun = false;
    std::string manager;          // field manager
    std::string fieldValidation;  // Strict | Warn | Ignore ("" = Warn, the upstream default)
    bool force = false;           // apply only
};

struct WriteResult {
    int code = 200;
    json body;
    std::vector<std::string> warnings;
};

struct DeleteOptions {
    std::string propagationPolicy;  // Background (default) | Foreground | Orphan
    std::optional<int64_t> gracePeriodSeconds;
    std::string preconditionUid, preconditionResourceVersion;
    bool dryRun = false;
};

struct ListOptions {
    std::string labelSelector, fieldSelector;
    int64_t limit = 0;
    std::string continueToken;
    std::string resourceVersion, resourceVersionMatch;
};

struct ListResult {
    std::vector<json> items;
    std::string resourceVersion;
    std::string continueToken;
    std::optional<int64_t> remainingItemCount;
};

struct WatchOptions {
    std::string labelSelector, fieldSelector;
    std::string resourceVersion;
    bool sendInitialEvents = false;
};

enum class PatchType { Merge, Json, Strategic, Apply };

class Store {
  public:
    explicit Store(const ApiServerOptions& opts);
    ~Store();

    void startControllers();
    void stopControllers();

    ResourcePtr resolve(const std::string& group, const std::string& version,
                        const std::string& plural) const;
    ResourcePtr resolveKind(const std::string& apiVersion, const std::string& kind) const;
    std::vector<ResourcePtr> resources() const;

    json get(const ResourceInfo& res, const std::string& ns, const std::string& name) const;
    // GET of the /scale subresource: the object's autoscaling/v1 Scale. update() and patch()
    // with subresource "scale" take a Scale (or a patch of one), change only the replicas
    // (owned with subresource "scale" in managedFields) and answer with the new Scale.
    json getScale(const ResourceInfo& res, const std::string& ns, const std::string& name) const;
    ListResult list(const ResourceInfo& res, const std::string& ns, const ListOptions& opts) const;
    WriteResult create(const ResourceInfo& res, const std::string& ns, json body,
                       const WriteOptions& opts);
    WriteResult update(const ResourceInfo& res, const std::string& ns, const std::string& name,
                       const std::string& subresource, json body, const WriteOptions& opts);
    WriteResult patch(const ResourceInfo& res, const std::string& ns, const std::string& name,
                      const std::string& subresource, PatchType type, const std::string& body,
                      const WriteOptions& opts);
    WriteResult remove(const ResourceInfo& res, const std::string& ns, const std::string& name,
                       const DeleteOptions& opts);

    // Registers a watcher whose queue already holds the initial/replayed events (or a 410
    // ERROR event, after which it is closed). Throws ApiError for bad selectors.
    std::shared_ptr<Watcher> watch(const ResourceInfo& res, const std::string& ns,
                                   const WatchOptions& opts);
    void unwatch(const std::shared_ptr<Watcher>& w);
    // Queues a BOOKMARK at the current revision behind every event already queued.
    void bookmark(Watcher& w);
    void closeAllWatchers();

    void compact();
    std::string currentResourceVersion() const;

  private:
    struct Event {
        uint64_t rv;
        std::string type;
        std::string storageKey;
        json object;
        json oldObject;  // MODIFIED: previous state, for selector transitions
    };
    struct Ref {
        std::string storageKey, ns, name;
        bool operator<(const Ref& o) const {
            return std::tie(storageKey, ns, name) < std::tie(o.storageKey, o.ns, o.name);
        }
    };
    using ObjectMap = std::map<std::string, json>;  // "ns/name" (cluster: "/name") -> object

    static std::string objKey(const std::string& ns, const std::string& name) {
        return ns + "/" + name;
    }
    json* findLocked(const ResourceInfo& res, const std::string& ns, const std::string& name);
    const json* findLocked(const ResourceInfo& res, const std::string& ns,
                           const std::string& name) const;

    // Stores the object under a new revision (or removes it for DELETED), records the event,
    // fans it out to watchers and runs the post-write hooks. Returns the stored object.
    json commitLocked(const ResourceInfo& res, const std::string& type, json obj,
                      const json* oldObj, bool fromController);
    void deliverLocked(Watcher& w, const Event& ev);

    WriteResult createLocked(const ResourceInfo& res, const std::string& ns, json body,
                             const WriteOptions& opts, bool managedFieldsSet);
    // Shared tail of PUT / PATCH / apply: status-subresource rules, validation, generation,
    // ownership, no-op detection, finalizer completion.
    WriteResult finishUpdateLocked(const ResourceInfo& res, const json& old, json candidate,
                                   const std::string& subresource, const WriteOptions& opts,
                                   bool managedFieldsSet, bool fromController);
    // Deletes now or marks deleting (finalizers); used by REST and by the controllers.
    WriteResult deleteLocked(const ResourceInfo& res, const json& obj, const DeleteOptions& opts,
                             bool fromController);
    // PUT of a Scale (or the result of patching one) onto the object `old`.
    WriteResult writeScaleLocked(const ResourceInfo& res, const json& old, const json& scale,
                                 const WriteOptions& opts);
    void validateCustomLocked(const ResourceInfo& res, json& obj, const WriteOptions& opts,
                              std::vector<std::string>& warnings) const;
    void checkNamespaceLocked(const ResourceInfo& res, const std::string& ns,
                              const std::string& name) const;

    // Controllers (controllers.cpp)
    void controllerLoop();
    bool runGarbageCollectorLocked();
    bool runNamespaceCleanupLocked();
    bool runCrdCleanupLocked();
    void runSimulationLocked(std::chrono::steady_clock::time_point now);
    void scheduleSimulationLocked(const ResourceInfo& res, const json& obj);
    bool removeFinalizerLocked(const ResourceInfo& res, const json& obj, const std::string& fin);

    ApiServerOptions opts_;
    mutable std::mutex mu_;
    ResourceRegistry registry_;
    std::map<std::string, ObjectMap> objects_;    // storageKey -> objects
    std::unordered_map<std::string, Ref> byUid_;  // for owner lookups
    uint64_t rv_ = 0;
    uint64_t compactedRv_ = 0;  // events at or below this revision are forgotten
    std::deque<std::shared_ptr<const Event>> history_;
    std::vector<std::shared_ptr<Watcher>> watchers_;

    // Controller state
    std::thread controller_;
    std::condition_variable ctlCv_;
    bool stopping_ = false;
    bool gcDirty_ = true;
    std::multimap<std::chrono::steady_clock::time_point, Ref> simDue_;
};

// Helpers shared by the store files.
std::string nowRfc3339();
std::string newUid();

}  // namespace sluice::testing
