// The Application controller: lifecycle, one reconcile with its bookkeeping, refreshes, and
// deletion.
#include "sluice/appcontroller/controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

#include "impl.h"
#include "sluice/appengine/tracking.h"
#include "sluice/cache/store.h"
#include "sluice/source/repository.h"
#include "sluice/util/strings.h"
#include "util.h"

namespace sluice::appcontroller {

namespace {

constexpr auto kCacheWait = std::chrono::seconds(10);
constexpr auto kNotReadyRequeue = std::chrono::seconds(1);

// The member `name` of obj, or fallback (which must outlive the returned reference).
const json& fieldOr(const json& obj, const char* name, const json& fallback) {
    if (!obj.is_object()) return fallback;
    auto it = obj.find(name);
    return it == obj.end() ? fallback : *it;
}

std::string propagationPolicy(const std::string& option) {
    if (option == "background") return "Background";
    if (option == "orphan") return "Orphan";
    return "Foreground";
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Lifecycle

ApplicationController::Impl::Impl(kube::KubeClient& c, cache::SharedInformerFactory& f,
                                  git::GitSource& g, Options o)
    : client(c),
      informers(f),
      opts(std::move(o)),
      clock(opts.clock ? *opts.clock : SystemClock::instance()),
      runtime(workqueue::Options{opts.clock, std::chrono::milliseconds(5),
                                 ExponentialBackoff{std::chrono::milliseconds(500), 2.0,
                                                    std::chrono::milliseconds(300000)}},
              opts.concurrency),
      gate(runtime.gate()),
      store(client, clock, opts.events, opts.controlNamespace, base),
      live(client, informers, clock, opts, gate, base),
      clusters(client, live, clock, opts, gate, base),
      sources(client, g, clock, opts, base, counters.gitFetches, counters.gitErrors) {}

ApplicationController::Impl::~Impl() {
    runtime.stop();
}

void ApplicationController::Impl::ensureBaseInformers() {
    std::lock_guard lock(baseMu);
    if (base.applications) return;
    cache::InformerOptions ao;
    ao.ns = opts.watchNamespace;
    ao.resyncPeriod = opts.resyncPeriod;
    // Applications are read for their spec and a few status fields: the managedFields go, and
    // the bulky status parts (per-resource lists) stay as text until a write compares them.
    ao.transform = [](json& obj) {
        cache::dropManagedFields(obj);
        if (auto st = obj.find("status"); st != obj.end() && st->is_object())
            appengine::packStatus(*st);
    };
    ao.rawMembers = appengine::packedStatusMembers();
    base.applications = &informers.informerFor(kApplicationGvk, ao);
    auto gateRef = gate;
    auto enqueue = [gateRef](const cache::ObjectPtr& o) {
        gateRef->add(kube::namespaceOf(*o) + "/" + kube::nameOf(*o));
    };
    base.applications->addEventHandler(cache::EventHandler{
        enqueue, [enqueue](const cache::ObjectPtr&, const cache::ObjectPtr& n) { enqueue(n); },
        enqueue});

    // Repository credentials: a changed Secret may fix an Application stuck on an auth error.
    cache::Informer* apps = base.applications;
    auto requeueAll = [gateRef, apps](const cache::ObjectPtr&) {
        for (const auto& a : apps->store().list())
            gateRef->add(kube::namespaceOf(*a) + "/" + kube::nameOf(*a));
    };
    for (const char* selector : {source::kSecretTypeLabel, source::kArgoSecretTypeLabel}) {
        cache::InformerOptions so;
        so.ns = opts.controlNamespace;
        so.labelSelector = selector;
        cache::Informer& secrets =
            informers.informerFor(kube::GroupVersionKind{"", "v1", "Secret"}, so);
        secrets.addEventHandler(cache::EventHandler{
            requeueAll,
            [requeueAll](const cache::ObjectPtr&, const cache::ObjectPtr& n) { requeueAll(n); },
            requeueAll});
        base.secrets.push_back(&secrets);
    }

    // AppProjects: a changed project re-evaluates its Applications (rules, sync windows).
    cache::InformerOptions po;
    po.ns = opts.controlNamespace;
    base.projects = &informers.informerFor(kAppProjectGvk, po);
    const std::string controlNs = opts.controlNamespace;
    auto projectChanged = [gateRef, apps, controlNs](const cache::ObjectPtr& p) {
        enqueueProjectApps(*apps, *gateRef, controlNs, *p);
    };
    base.projects->addEventHandler(cache::EventHandler{
        projectChanged,
        [projectChanged](const cache::ObjectPtr&, const cache::ObjectPtr& n) { projectChanged(n); },
        projectChanged});
    informers.startAll();
}

bool ApplicationController::Impl::waitForSync(std::chrono::milliseconds timeout) {
    ensureBaseInformers();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto left = [&] {
        return std::max(std::chrono::milliseconds(0),
                        std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now()));
    };
    if (!base.applications->waitForSync(left())) return false;
    for (cache::Informer* s : base.secrets)
        if (!s->waitForSync(left())) return false;
    // Without the AppProject CRD (or the right to read it) only the built-in default project
    // exists: that is an answer too (lookupProject), not a cache still filling.
    while (!base.projects->hasSynced()) {
        const auto error = base.projects->lastError();
        if (error && (error->code == 404 || error->code == 403)) break;
        if (left().count() == 0) return false;
        base.projects->waitForSync(std::min(left(), std::chrono::milliseconds(50)));
    }
    return true;
}

void ApplicationController::Impl::start() {
    if (runtime.stopped()) return;
    ensureBaseInformers();
    if (!opts.ownership) opts.ownership = std::make_shared<runtime::StaticOwnership>(opts.shard);
    // Applications gained from another replica are reconciled at once: it may have left them
    // half done.
    opts.ownership->onKeysGained([gate = gate, apps = base.applications](const auto& gained) {
        for (const auto& obj : apps->store().list())
            if (const auto key = cache::storeKeyOf(*obj); gained(key)) gate->add(key);
    });
    runtime.start([this](const std::string& key) {
        // The claim fences this reconcile's writes (kube/fence.h) while it runs.
        const runtime::Claim claim = opts.ownership->claim(key);
        if (!claim) return runtime::Result{};  // another replica's
        ReconcileOutcome out = reconcileKey(key);
        runtime::Result result;
        result.backoff = out.rateLimited;
        result.requeueAfter = out.requeueAfter.value_or(opts.pollInterval);
        return result;
    });
    clusters.startPublishing();
}

ReconcileOutcome ApplicationController::Impl::reconcileKey(const std::string& key) {
    const auto started = std::chrono::steady_clock::now();
    auto [ns, name] = cache::splitStoreKey(key);
    ReconcileOutcome out;
    try {
        out = reconcile(ns, name);
    } catch (const std::exception& e) {
        out.record.key = key;
        out.record.succeeded = false;
        out.record.error = git::scrubUrl(e.what());
        out.rateLimited = true;
        spdlog::warn("application {}: reconcile failed: {}", key, out.record.error);
    }
    out.record.key = key;
    out.record.duration = std::chrono::steady_clock::now() - started;
    counters.reconciles++;
    observer.notify(out.record);
    return out;
}

// ------------------------------------------------------------------------------------------
// Refreshes from the git webhook receiver

int ApplicationController::Impl::refreshRepository(const std::string& repoUrl,
                                                   const std::string& branch) {
    ensureBaseInformers();
    const std::string norm = source::normaliseRepoUrl(repoUrl);
    // Whether `branch` is the default one, as far as a resolve of HEAD told us.
    bool branchIsDefault = branch.empty();
    bool defaultKnown = false;
    if (auto ref = sources.defaultBranchRef(norm)) {
        defaultKnown = true;
        if (*ref == branch || *ref == "refs/heads/" + branch) branchIsDefault = true;
    }
    int queued = 0;
    for (const auto& obj : base.applications->store().list()) {
        const json& a = *obj;
        const std::string url = detail::strAt(a, "/spec/source/repoURL"_json_pointer);
        if (url.empty() || source::normaliseRepoUrl(url) != norm) continue;
        const std::string target = detail::strAt(a, "/spec/source/targetRevision"_json_pointer);
        bool matches = false;
        if (branch.empty()) {
            matches = true;
        } else if (target == branch || target == "refs/heads/" + branch) {
            matches = true;
        } else if (target.empty() || target == "HEAD") {
            // Unknown default branch: a spurious refresh costs one fetch, a missed one a poll.
            matches = branchIsDefault || !defaultKnown;
        }
        if (!matches) continue;
        const std::string key = kube::namespaceOf(a) + "/" + kube::nameOf(a);
        {
            std::lock_guard lock(mu);
            apps[key].refreshRequestedAt = clock.now();
        }
        runtime.add(key);
        ++queued;
    }
    return queued;
}

// ------------------------------------------------------------------------------------------
// Deletion with the resources finalizer

// The first of `names` among the Application's finalizers: its index and name.
static std::optional<std::pair<std::size_t, std::string>> findFinalizer(
    const json& object, std::initializer_list<const char*> names) {
    const json finalizers = object["metadata"].value("finalizers", json::array());
    for (std::size_t i = 0; i < finalizers.size(); ++i)
        for (const char* name : names)
            if (finalizers[i] == name) return std::make_pair(i, std::string(name));
    return std::nullopt;
}

// The resources finalizer deletes what the Application deployed; then the post-delete
// finalizer runs its PostDelete hooks. Without either the objects stay.
ReconcileOutcome ApplicationController::Impl::handleDeletion(AppRef& ref) {
    if (auto resources =
            findFinalizer(ref.object, {appengine::kFinalizer, appengine::kArgoFinalizer}))
        return deleteResources(ref, resources->first, resources->second);
    if (auto postDelete = findFinalizer(
            ref.object, {appengine::kPostDeleteFinalizer, appengine::kArgoPostDeleteFinalizer}))
        return runPostDeleteHooks(ref, postDelete->first, postDelete->second);
    ReconcileOutcome out;
    out.record.key = ref.key;
    return out;
}

ReconcileOutcome ApplicationController::Impl::deleteResources(AppRef& ref, std::size_t index,
                                                              const std::string& finalizer) {
    ReconcileOutcome out;
    out.record.key = ref.key;

    appengine::ParseResult parsed =
        appengine::parseApplication(ref.object);  // errors do not stop cleanup
    kube::DeleteOptions del;
    del.propagationPolicy =
        propagationPolicy(parsed.spec.syncPolicy.options.prunePropagationPolicy);
    const auto inventory =
        appengine::parseInventory(fieldOr(*ref.status, "inventory", json::array()));
    std::string clusterError;
    std::shared_ptr<Cluster> cluster = clusters.use(ref.key, parsed.spec.destination.server,
                                                    parsed.spec.destination.name, clusterError);
    if (!cluster && clusterError.find("malformed") == std::string::npos) {
        // As Argo CD: with its cluster gone, the resources cannot be deleted; the Application
        // goes without them (said in an Event).
        store.event(ref, kube::EventType::Warning, "ResourcesNotDeleted",
                    clusterError + ": the application's resources were not deleted");
        removeFinalizer(ref, index, finalizer, out);
        return out;
    }
    if (!cluster) {
        out.record.succeeded = false;
        out.record.error = clusterError;
        out.requeueAfter = kNotReadyRequeue;
        return out;
    }
    LiveState& live = cluster->live();
    kube::KubeClient& client = cluster->client();
    std::set<kube::GroupVersionKind> kinds = LiveState::kindsOf({}, inventory);
    if (auto caches = live.ensureInformers(kinds, kCacheWait);
        caches.state != cache::ScopedInformer::SyncState::Synced) {
        out.record.succeeded = false;
        out.record.error = caches.error.empty() ? "waiting for watch caches" : caches.error;
        out.requeueAfter = kNotReadyRequeue;
        return out;
    }
    int remaining = 0;
    for (const auto& gvk : kinds) {
        cache::ScopedInformer* informer = live.informerFor(gvk);
        if (!informer) continue;  // the kind is gone from the cluster, and its objects with it
        for (const auto& obj : informer->list()) {
            if (!appengine::isTrackedBy(*obj, ref.instance)) continue;
            if (appengine::objectSyncOptionsOf(*obj).deleteDisabled) continue;
            ++remaining;
            if ((*obj)["metadata"].contains("deletionTimestamp")) continue;
            try {
                client.remove(gvk, kube::namespaceOf(*obj), kube::nameOf(*obj), del);
                spdlog::info("application {}: deleted {} {} (application deleted)", ref.key,
                             gvk.str(), cache::storeKeyOf(*obj));
            } catch (const kube::ApiError& e) {
                if (!e.isNotFound()) throw;
            }
        }
    }
    if (remaining > 0) {
        out.record.succeeded = false;
        out.record.error =
            "waiting for " + std::to_string(remaining) + " resource(s) to be deleted";
        out.requeueAfter = kNotReadyRequeue;
        return out;
    }
    removeFinalizer(ref, index, finalizer, out);
    // A post-delete finalizer is next: its hooks run once the resources are gone.
    if (findFinalizer(ref.object,
                      {appengine::kPostDeleteFinalizer, appengine::kArgoPostDeleteFinalizer}) &&
        !out.requeueAfter)
        out.requeueAfter = std::chrono::milliseconds(0);
    return out;
}

bool ApplicationController::Impl::removeFinalizer(AppRef& ref, std::size_t index,
                                                  const std::string& finalizer,
                                                  ReconcileOutcome& out) {
    // The index is the cache's, which may not show a removal of ours yet: when the test fails,
    // the finalizer is looked up again in the object as the server has it.
    for (int attempt = 0; attempt < 2; ++attempt) {
        const std::string path = "/metadata/finalizers/" + std::to_string(index);
        json ops = json::array({{{"op", "test"}, {"path", path}, {"value", finalizer}},
                                {{"op", "remove"}, {"path", path}}});
        try {
            client.patch(kApplicationGvk, ref.ns, ref.name, kube::PatchType::JsonPatch, ops.dump());
            spdlog::info("application {}: finalizer {} removed", ref.key, finalizer);
            return true;
        } catch (const kube::ApiError& e) {
            if (e.isNotFound()) return true;
            if (!e.isInvalid() && !e.isConflict()) throw;
        }
        json fresh;
        try {
            fresh = client.get(kApplicationGvk, ref.ns, ref.name);
        } catch (const kube::ApiError& e) {
            if (e.isNotFound()) return true;
            throw;
        }
        auto found = findFinalizer(fresh, {finalizer.c_str()});
        if (!found) return true;  // already gone
        index = found->first;
    }
    out.requeueAfter = std::chrono::milliseconds(0);  // finalizers keep changing: look again
    return false;
}

// ------------------------------------------------------------------------------------------
// Public API

ApplicationController::ApplicationController(kube::KubeClient& client,
                                             cache::SharedInformerFactory& informers,
                                             git::GitSource& git, Options options)
    : impl_(std::make_unique<Impl>(client, informers, git, std::move(options))) {}

ApplicationController::~ApplicationController() {
    stop();
}

void ApplicationController::start() {
    impl_->start();
}

bool ApplicationController::waitForSync(std::chrono::milliseconds timeout) {
    return impl_->waitForSync(timeout);
}

void ApplicationController::stop() {
    impl_->clusters.stopPublishing();
    impl_->runtime.stop();
}

std::vector<ClusterState> ApplicationController::clusters() const {
    return impl_->clusters.list();
}

void ApplicationController::refresh(const std::string& ns, const std::string& name) {
    const std::string key = ns + "/" + name;
    {
        std::lock_guard lock(impl_->mu);
        impl_->apps[key].refreshRequestedAt = impl_->clock.now();
    }
    impl_->runtime.add(key);
}

int ApplicationController::refreshRepository(const std::string& repoUrl,
                                             const std::string& branch) {
    return impl_->refreshRepository(repoUrl, branch);
}

ReconcileRecord ApplicationController::reconcileNow(const std::string& ns,
                                                    const std::string& name) {
    impl_->ensureBaseInformers();
    impl_->waitForSync(std::chrono::seconds(30));
    return impl_->runtime
        .runNow(ns + "/" + name,
                [this](const std::string& key) { return impl_->reconcileKey(key); })
        .record;
}

Stats ApplicationController::stats() const {
    Stats s;
    s.reconciles = impl_->counters.reconciles;
    s.syncs = impl_->counters.syncs;
    s.syncFailures = impl_->counters.syncFailures;
    s.prunes = impl_->counters.prunes;
    s.driftCorrections = impl_->counters.driftCorrections;
    s.gitFetches = impl_->counters.gitFetches;
    s.gitErrors = impl_->counters.gitErrors;
    s.queueDepth = impl_->runtime.queueDepth();
    return s;
}

void ApplicationController::setObserver(std::function<void(const ReconcileRecord&)> observer) {
    impl_->observer.set(std::move(observer));
}

}  // namespace sluice::appcontroller
