#pragma once
// ApplicationController internals shared by its source files (reconcile, source, sync).
#include <atomic>
#include <chrono>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/app/plan.h"
#include "sluice/app/spec.h"
#include "sluice/app/status.h"
#include "sluice/app/tracking.h"
#include "sluice/appcontroller/controller.h"
#include "sluice/cache/scoped_informer.h"
#include "sluice/render/render.h"
#include "sluice/runtime/runtime.h"
#include "sluice/source/service.h"
#include "sluice/util/lru_cache.h"

namespace sluice::appcontroller {

using nlohmann::json;

// Canaries (the Canary controller's kind): a Deployment one targets is scaled by it.
inline const kube::GroupVersionKind kCanaryGvk{"sluice.io", "v1alpha1", "Canary"};

namespace detail {

// Writes of ours the Application cache may not show yet (runtime::PendingWrites keeps them
// with the version that shows them): the reconcile reads these instead of the cached fields.
struct UnseenWrites {
    std::shared_ptr<const json> status;
    bool operationRemoved = false;
    std::set<std::string> annotationsRemoved;
};

struct AppState {
    int64_t comparedGeneration = -1;
    // refresh() / refreshRepository(): the next reconcile needs a fetch started after this.
    std::optional<Clock::TimePoint> refreshRequestedAt;
    // Last message of each deduplicated Event reason (InvalidSpec, ComparisonError, ...).
    std::map<std::string, std::string> lastEvent;
    std::optional<Clock::TimePoint> retryAt;  // the pending retry of a failed sync
    // The last compare's results, reused for objects neither git nor the cluster changed.
    std::shared_ptr<const app::CompareMemo> compareMemo;
};

struct SourceEntry {
    git::Revision revision;
    Clock::TimePoint resolvedAt;
    // The last resolve failed: reported again, without fetching, for a short while (a broken
    // repository is not hammered by every watch event of the Applications using it).
    std::optional<git::GitError> error;
};

using Rendered = source::RenderedPtr;
using Prepared = std::shared_ptr<const app::PreparedObjects>;

template <class Value>
using LruCache = util::LruCache<Value>;

}  // namespace detail

// One Application as a reconcile sees it.
struct AppRef {
    std::string ns;
    std::string name;
    std::string key;       // "ns/name"
    std::string instance;  // app::instanceName()
    json object;           // the Application without its status (cache plus our pending writes)
    std::shared_ptr<const json> status;  // its status as the server holds it (never null)
};

// The desired state of one revision, compared with the live state.
struct Desired {
    // The revision compared: a single source's commit or chart version; with multiple sources
    // their revisions joined by ",", each also in `revisions`.
    git::Revision revision;
    std::vector<std::string> revisions;
    std::vector<std::string> sourceTypes;  // status.sourceType(s)
    std::shared_ptr<const app::PreparedObjects> prepared;
    std::string preparedKey;  // identifies prepared's content; "" when it has errors
    app::CompareResult compared;
    std::vector<app::InventoryEntry> inventory;  // the inventory compared against
};

// What Argo CD records of a revision in sync, syncResult and history: {revision, source} for
// one source, {revisions, sources} for several.
json revisionAndSource(const AppRef& ref, const app::ApplicationSpec& spec, const Desired& d);
// The operation as operationState.operation records it: sync.source(s) without credentials.
json recordedOperation(const json& operation);
// The revision a syncResult or history entry records, as Desired::revision.sha spells it.
std::string recordedRevision(const json& entry);

// How a sync operation ended.
struct SyncOutcome {
    std::string phase;  // Running (retry pending or interrupted), Succeeded, Failed, Error
    std::string message;
    json resources = json::array();  // syncResult.resources
    std::vector<app::InventoryEntry> inventory;
    bool interrupted = false;  // controller shutdown between waves
    bool terminated = false;   // the user asked for it
    bool retryScheduled = false;
    std::chrono::milliseconds retryDelay{0};
    int retryCount = 0;
    std::string startedAt;
    uint64_t pruned = 0;
    // What our applies produced, so the caches can be waited for before comparing again.
    struct Written {
        kube::GroupVersionKind gvk;
        std::string ns;
        std::string name;
        std::string resourceVersion;
    };
    std::vector<Written> written;
};

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

    // --- reconcile (reconcile.cpp)
    class ReconcilePass;  // one reconcile's phases
    ReconcileOutcome reconcile(const std::string& ns, const std::string& name);
    ReconcileOutcome handleDeletion(AppRef& ref);
    // Reads the Application from the cache, with our writes the cache has not shown yet.
    bool loadApp(AppRef& ref);
    std::string operationPhase(const AppRef& ref);
    // Writes the status fields in `updates` (null = remove) that differ from ref.status, and
    // reconciledAt with them; nothing when none differs. Tests the operation phase we last
    // wrote so a user's "Terminating" is never overwritten: returns false when that test
    // failed (ref is then re-read from the API).
    bool writeStatus(AppRef& ref, const json& updates);
    void removeOperation(AppRef& ref);
    void removeAnnotations(AppRef& ref, const std::vector<std::string>& keys);
    void recordPending(const std::string& key, const json& response,
                       const std::function<void(detail::UnseenWrites&)>& update);
    void eventOnce(const AppRef& ref, kube::EventType type, const std::string& reason,
                   const std::string& message);
    void event(const AppRef& ref, kube::EventType type, const std::string& reason,
               const std::string& message);

    // --- source and desired state (source.cpp)
    git::Repository repositoryFor(const std::string& repoURL);
    // Resolves the target, reusing a resolve that started at or after freshAfter and is younger
    // than pollInterval (shared by every Application of that repository and revision). Throws
    // git::GitError.
    git::Revision resolveTarget(const app::Source& source, Clock::TimePoint freshAfter,
                                bool& fetched);
    git::Revision resolveExact(const app::Source& source, const std::string& revision);
    // Every source's revision (spec.sources order), resolved as resolveTarget does.
    std::vector<git::Revision> resolveTargets(const app::ApplicationSpec& spec,
                                              Clock::TimePoint freshAfter, bool& fetched);
    source::HelmCredentials helmCredentialsFor(const std::string& repoURL);
    // The config management plugins of the plugin ConfigMap (read at most every few seconds).
    std::vector<source::PluginDefinition> pluginDefinitions();
    kube::ServerInfo destinationInfo();
    app::ScopeLookup scopeLookup();
    void forgetUnknownKinds();
    // Renders, prepares and compares. Throws git::GitError / render::RenderError; problems in
    // the manifests are returned in prepared.errors (nothing compared).
    Desired desiredFor(const AppRef& ref, const app::ApplicationSpec& spec,
                       const std::vector<git::Revision>& revisions,
                       const std::vector<app::InventoryEntry>& inventory);
    // Informers for these kinds exist, have their handler, and have synced (bounded wait).
    // Failed: the API server refused a list or watch (RBAC), with its message.
    cache::ScopedInformer::Sync ensureInformers(const std::set<kube::GroupVersionKind>& kinds,
                                                std::chrono::milliseconds wait);
    cache::ScopedInformer* managedInformer(const kube::GroupVersionKind& gvk);
    std::shared_ptr<const json> liveObject(const kube::GroupVersionKind& gvk, const std::string& ns,
                                           const std::string& name);
    std::set<kube::GroupVersionKind> kindsOf(const std::vector<json>& objects,
                                             const std::vector<app::InventoryEntry>& inventory);
    void compareInto(Desired& desired, const AppRef& ref, const app::ApplicationSpec& spec);
    int refreshRepository(const std::string& repoUrl, const std::string& branch);

    // --- sync (sync.cpp)
    struct SyncRequest {
        app::Operation op;
        bool automated = false;
        bool selfHeal = false;
        app::SyncRequest request;
        std::optional<app::RetryPolicy> retry;
        int retryCount = 0;
        std::string startedAt;  // kept across retries
    };
    class SyncRun;  // one sync's phases (sync.cpp)
    SyncOutcome runSync(AppRef& ref, const app::ApplicationSpec& spec, Desired& desired,
                        const SyncRequest& req, json& updates);
    // Waits (bounded) until the managed caches hold at least the versions a sync wrote.
    void waitForCaches(const SyncOutcome& outcome, std::chrono::milliseconds limit);

    kube::KubeClient& client;
    cache::SharedInformerFactory& informers;
    git::GitSource& git;
    Options opts;
    const Clock& clock;
    std::unique_ptr<kube::KubeEventRecorder> ownEvents;
    kube::EventRecorder* events;
    runtime::Runtime runtime;
    std::shared_ptr<workqueue::Gate> gate;  // runtime.gate(), for the informers' handlers
    runtime::Observer<ReconcileRecord> observer;
    runtime::PendingWrites<detail::UnseenWrites> pending;
    kube::GroupVersionKind appGvk;

    std::mutex baseMu;  // creation of the base informers
    cache::Informer* appInformer = nullptr;
    std::vector<cache::Informer*> secretInformers;

    std::mutex mu;  // guards the maps below
    std::map<kube::GroupVersionKind, std::unique_ptr<cache::ScopedInformer>> managed;
    std::map<std::string, detail::AppState> apps;
    std::map<std::pair<std::string, std::string>, detail::SourceEntry> sources;
    std::map<std::pair<std::string, std::string>, Clock::TimePoint> unknownKinds;
    // Renders every source type with the real tools and caches the output by content; desired
    // states prepared from it are kept by (render key, destination namespace, instance): an
    // unchanged source is neither rendered nor prepared again on every reconcile.
    std::unique_ptr<source::SourceService> sourceService;
    // The destination's version and API versions for renders, read every few minutes.
    std::mutex serverInfoMu;
    std::optional<Clock::TimePoint> serverInfoReadAt;
    kube::ServerInfo serverInfo;
    std::mutex pluginsMu;
    std::optional<Clock::TimePoint> pluginsReadAt;
    std::vector<source::PluginDefinition> plugins;
    detail::LruCache<detail::Prepared> preparedStates{1024};
    // Each render key's source types, so a prepared state found above needs no render.
    detail::LruCache<std::shared_ptr<const std::vector<std::string>>> sourceTypes{4096};

    struct Counters {
        std::atomic<uint64_t> reconciles{0}, syncs{0}, syncFailures{0}, prunes{0},
            driftCorrections{0}, gitFetches{0}, gitErrors{0};
    } counters;
};

}  // namespace sluice::appcontroller
