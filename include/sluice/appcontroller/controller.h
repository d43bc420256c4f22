#pragma once
// The Application controller: watches Applications (sluice.io/v1alpha1) and the objects they
// own, renders each Application's git source, compares it with the watch cache and syncs with
// server-side apply in waves, prunes, self-heals, and reports status, history and Events.
//
// One reconcile of an Application (a key "namespace/name" on the work queue):
//   1. deleted with the finalizer -> delete its tracked objects (propagation policy), wait until
//      they are gone, drop the finalizer.
//   2. parse the spec; errors -> InvalidSpecError condition, nothing else.
//   3. resolve and render the source, at most once per poll interval unless a refresh was asked
//      (annotation sluice.io/refresh, refresh(), refreshRepository(), spec change); failure ->
//      ComparisonError condition, nothing applied or pruned.
//   4. compare against the informer caches (one per kind, started on demand; not synced yet ->
//      requeue, never compare against a partial cache).
//   5. sync when an operation is requested, or automated and out of sync (a revision whose
//      automated sync failed is not retried beyond syncPolicy.retry; drift of an already synced
//      revision is corrected only with selfHeal).
//   6. write status only when it changed (a no-op reconcile makes no API writes).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/appengine/plan.h"
#include "sluice/cache/informer.h"
#include "sluice/git/git.h"
#include "sluice/kube/client.h"
#include "sluice/kube/events.h"
#include "sluice/runtime/ownership.h"
#include "sluice/runtime/shard.h"
#include "sluice/source/source.h"
#include "sluice/util/clock.h"

namespace sluice::appcontroller {

// A client of the local cluster whose requests impersonate `user` (and `groups`, none: the API
// server derives a service account's groups).
using ImpersonatingClientFactory = std::function<std::unique_ptr<kube::KubeClient>(
    const std::string& user, const std::vector<std::string>& groups)>;

struct Options {
    std::string watchNamespace;               // Applications watched; "" = all namespaces
    std::string controlNamespace = "sluice";  // repository Secrets live here; see instanceName()
    int concurrency = 4;                      // Applications reconciled in parallel
    int applyConcurrency = 32;                // API writes in flight within one wave
    std::chrono::milliseconds pollInterval{180000};     // git re-fetch when nothing triggers it
    std::chrono::milliseconds resyncPeriod{0};          // full re-compare of every app; 0 = off
    std::chrono::milliseconds syncTimeout{300000};      // hard limit of one sync operation
    std::chrono::milliseconds healthPollInterval{250};  // between health checks of a wave
    std::string fieldManager = "sluice";
    const Clock* clock = nullptr;  // nullptr = system clock
    // nullptr = Events written through the client (component "sluice-controller").
    kube::EventRecorder* events = nullptr;
    // How sources are rendered: tool paths, limits, work directory (--helm-path, ...).
    source::Settings sources;
    int renderConcurrency = 4;  // renders running at once (--render-concurrency)
    // ConfigMap in the control namespace whose keys define config management plugins.
    std::string pluginConfigMap = "sluice-cmp";
    // Namespaces (and whether cluster-scoped kinds) Applications may deploy to; the managed
    // kinds are watched in those namespaces only (--managed-namespaces, --cluster-resources).
    appengine::ManagedScope managedScope;
    // Clients of the local cluster impersonating a project's destinationServiceAccounts (built
    // from the controller's ClusterConfig). Unset: such syncs fail saying so.
    ImpersonatingClientFactory impersonatingClient;
    // --shard/--shards: only the Applications of this shard are reconciled, and its cluster
    // states are published under a ConfigMap of its own.
    runtime::Shard shard;
    // Which Applications this replica reconciles now, when they change hands (--sharding
    // leases); nullptr = those of `shard`. Each reconcile runs under its claim.
    std::shared_ptr<runtime::Ownership> ownership;
    // With ownership by Leases: the name suffix of the ConfigMap the cluster states are
    // published in ("" = by shard), and its owner reference (the replica's membership Lease, so
    // the ConfigMap goes with the replica; null while unknown: nothing is published yet).
    std::string publishSuffix;
    std::function<nlohmann::json()> publishOwner;
};

// What one reconcile did (tests, benchmarks, metrics).
struct ReconcileRecord {
    std::string key;  // "namespace/name"
    std::chrono::nanoseconds duration{0};
    bool synced = false;     // a sync operation ran
    bool succeeded = true;   // false: error, sync failed, or requeued for missing information
    std::string syncStatus;  // "Synced", "OutOfSync", "Unknown"
    std::string health;      // Application health after the reconcile
    std::string revision;    // resolved commit
    std::string error;       // what went wrong, if anything
};

struct Stats {
    uint64_t reconciles = 0;
    uint64_t syncs = 0;
    uint64_t syncFailures = 0;
    uint64_t prunes = 0;            // objects deleted by prune
    uint64_t driftCorrections = 0;  // self-heal syncs
    uint64_t gitFetches = 0;
    uint64_t gitErrors = 0;
    std::size_t queueDepth = 0;
};

// A destination cluster as the controller sees it (kubectl sluice cluster, /metrics).
struct ClusterState {
    std::string name;
    std::string server;
    std::string secret;  // the cluster Secret; "" for the built-in local cluster
    std::string project;
    std::vector<std::string> namespaces;  // "" = all
    // "Successful" (its watches are connected), "Failed" (unreachable, with message), or
    // "Unknown" (no Application targets it, so it is not connected).
    std::string connectionState;
    std::string message;
    std::string serverVersion;  // "" until read
    std::vector<std::string> applications;
    std::size_t cachedObjects = 0;
};

class ApplicationController {
  public:
    ApplicationController(kube::KubeClient& client, cache::SharedInformerFactory& informers,
                          git::GitSource& git, Options options);
    ~ApplicationController();  // stop()
    ApplicationController(const ApplicationController&) = delete;
    ApplicationController& operator=(const ApplicationController&) = delete;

    // Registers the Application and repository-Secret informers, starts them and the workers.
    void start();
    // True once the Application cache has synced (readiness).
    bool waitForSync(std::chrono::milliseconds timeout);
    // Stops taking work, lets a running sync finish its current wave (never half a wave),
    // records it as terminated, and joins the workers. Idempotent.
    void stop();

    // Fetch and compare this Application now (its next reconcile ignores the poll interval).
    void refresh(const std::string& ns, const std::string& name);
    // For the git webhook receiver: refresh every Application whose normalised repoURL
    // (source::normaliseRepoUrl) equals repoUrl's and whose targetRevision is `branch` (or
    // HEAD/"" when branch is the default branch, or when branch is ""). Returns how many were
    // queued.
    int refreshRepository(const std::string& repoUrl, const std::string& branch);

    // Runs one reconcile of ns/name on the calling thread (tests and benchmarks; start() need
    // not have been called, but the informers must be running).
    ReconcileRecord reconcileNow(const std::string& ns, const std::string& name);

    Stats stats() const;
    std::vector<ClusterState> clusters() const;
    // Called after every reconcile (on a worker thread).
    void setObserver(std::function<void(const ReconcileRecord&)> observer);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::appcontroller
