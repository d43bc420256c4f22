#pragma once
// ApplicationController internals shared by its source files. Impl runs the reconciles; what a
// reconcile reads and writes is in its parts, one responsibility each:
//   ApplicationStore (application_store.h) - the Applications: load, status writes, Events
//   Sources (sources.h)                    - revisions resolved and rendered into desired states
//   LiveState (live_state.h)               - the managed kinds' watch caches and the compare
// A reconcile's phases are Impl::ReconcilePass (reconcile.cpp), a sync's Impl::SyncRun (sync.cpp).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "application_store.h"
#include "clusters.h"
#include "live_state.h"
#include "sluice/appcontroller/controller.h"
#include "sluice/appengine/plan.h"
#include "sluice/runtime/runtime.h"
#include "sources.h"
#include "types.h"

namespace sluice::appcontroller {

namespace detail {

// What the controller remembers of one Application between its reconciles.
struct AppState {
    int64_t comparedGeneration = -1;
    // refresh() / refreshRepository(): the next reconcile needs a fetch started after this.
    std::optional<Clock::TimePoint> refreshRequestedAt;
    std::optional<Clock::TimePoint> retryAt;  // the pending retry of a failed sync
    // The last compare's results, reused for objects neither git nor the cluster changed.
    std::shared_ptr<const appengine::CompareMemo> compareMemo;
    // The digest of status.resources as last built (packed text), for the compare whose memo
    // is resourcesFor: a compare that reuses that memo whole finds that text in the status.
    std::string resourcesDigest;
    std::weak_ptr<const appengine::CompareMemo> resourcesFor;
    // status.inventory as last parsed, and the digest of the (packed) text it was parsed from.
    std::string inventoryDigest;
    std::vector<appengine::InventoryEntry> inventory;
    // The deletion (uid and deletionTimestamp) whose PostDelete hooks succeeded: they do not
    // run again if removing the finalizer has to be retried.
    std::string postDeleteDoneFor;
    // After PostDelete hooks failed: when to run them again.
    std::optional<Clock::TimePoint> postDeleteRetryAt;
};

}  // namespace detail

struct ReconcileOutcome {
    ReconcileRecord record;
    std::optional<std::chrono::milliseconds> requeueAfter;  // default pollInterval
    bool rateLimited = false;                               // requeue with backoff instead
};

struct ApplicationController::Impl {
    Impl(kube::KubeClient& client, cache::SharedInformerFactory& informers, git::GitSource& git,
         Options options);
    ~Impl();

    // --- lifecycle (controller.cpp)
    void start();
    void ensureBaseInformers();
    bool waitForSync(std::chrono::milliseconds timeout);
    // One reconcile of key with its timing, counters and observer; exceptions become errors.
    ReconcileOutcome reconcileKey(const std::string& key);
    int refreshRepository(const std::string& repoUrl, const std::string& branch);

    // --- AppProjects (projects.cpp)
    struct ProjectLookup {
        enum class State { Found, Missing, NotReady } state = State::Missing;
        appengine::ProjectParse parsed;  // Found: the project (the built-in default included)
        std::string error;               // Missing/NotReady: why
        std::vector<std::string> fieldsWithoutEffect;
    };
    ProjectLookup lookupProject(const std::string& name);
    // The Applications of a project, queued for a reconcile (the project changed). Static: the
    // informer's handler holds no Impl, which the factory may outlive.
    static void enqueueProjectApps(cache::Informer& apps, workqueue::Gate& gate,
                                   const std::string& controlNamespace, const json& project);

    // --- reconcile (reconcile.cpp)
    class ReconcilePass;  // one reconcile's phases
    ReconcileOutcome reconcile(const std::string& ns, const std::string& name);
    // Deletion with the resources finalizer (controller.cpp).
    ReconcileOutcome handleDeletion(AppRef& ref);
    ReconcileOutcome deleteResources(AppRef& ref, std::size_t index, const std::string& finalizer);
    // PostDelete hooks of the deleted Application's source (post_delete.cpp).
    ReconcileOutcome runPostDeleteHooks(AppRef& ref, std::size_t index,
                                        const std::string& finalizer);
    // False when the finalizers changed meanwhile (out is requeued at once).
    bool removeFinalizer(AppRef& ref, std::size_t index, const std::string& finalizer,
                         ReconcileOutcome& out);

    // --- sync (sync.cpp)
    struct SyncRequest {
        appengine::Operation op;
        bool automated = false;
        bool selfHeal = false;
        appengine::SyncRequest request;
        std::optional<appengine::RetryPolicy> retry;
        int retryCount = 0;
        std::string startedAt;  // kept across retries
        // The project's destinationServiceAccounts: the user the sync's writes impersonate
        // ("" = the controller's identity), or why the sync fails before writing anything.
        appengine::ImpersonationResult impersonation;
    };
    class SyncRun;  // one sync's phases (sync.cpp)
    SyncOutcome runSync(AppRef& ref, Cluster& cluster, const appengine::ApplicationSpec& spec,
                        Desired& desired, const SyncRequest& req, json& updates);

    kube::KubeClient& client;
    cache::SharedInformerFactory& informers;
    Options opts;
    const Clock& clock;
    runtime::Runtime runtime;
    std::shared_ptr<workqueue::Gate> gate;  // runtime.gate(), for the informers' handlers
    runtime::Observer<ReconcileRecord> observer;

    struct Counters {
        std::atomic<uint64_t> reconciles{0}, syncs{0}, syncFailures{0}, prunes{0},
            driftCorrections{0}, gitFetches{0}, gitErrors{0};
    } counters;

    std::mutex baseMu;  // creation of the base informers
    BaseInformers base;

    // The parts (see the top of this file); they keep references to the members above.
    ApplicationStore store;
    LiveState live;  // the local cluster's
    Clusters clusters;
    Sources sources;

    std::mutex mu;  // guards apps
    std::map<std::string, detail::AppState> apps;
};

}  // namespace sluice::appcontroller
