// The managed-kind watch caches, discovery of kinds, and the compare against the live state.
#include "live_state.h"

#include <algorithm>
#include <thread>

#include "sluice/appengine/orphans.h"
#include "sluice/appengine/tracking.h"
#include "sluice/cache/store.h"
#include "sluice/runtime/runtime.h"
#include "util.h"

namespace sluice::appcontroller {

namespace {

// A kind discovery did not know is asked for again after this long (or after a CRD apply).
constexpr auto kUnknownKindTtl = std::chrono::seconds(10);

// Drops what nobody reads from managed objects: kubectl's last-applied copy of the object and
// the creation time.
void dropUnread(json& obj) {
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) return;
    md->erase("creationTimestamp");
    auto ann = md->find("annotations");
    if (ann == md->end() || !ann->is_object()) return;
    ann->erase("kubectl.kubernetes.io/last-applied-configuration");
    if (ann->empty()) md->erase("annotations");
}

bool hasOwnerReferences(const json& obj) {
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) return false;
    auto refs = md->find("ownerReferences");
    return refs != md->end() && refs->is_array() && !refs->empty();
}

// A top-level object no Application tracks may be an orphaned resource (AppProject
// spec.orphanedResources): the Applications deploying to its namespace whose project monitors
// orphans compare again. Nothing is read beyond the projects while none monitors them.
void requeueOrphanWatchers(workqueue::Gate& gate, const std::string& controlNs,
                           cache::Informer* apps, cache::Informer* projects, const json& obj) {
    if (!apps || !projects || hasOwnerReferences(obj)) return;
    const std::string ns = kube::namespaceOf(obj);
    if (ns.empty()) return;
    std::set<std::string> monitoring;
    for (const auto& p : projects->store().list())
        if (kube::namespaceOf(*p) == controlNs && appengine::parseOrphanedResources(*p))
            monitoring.insert(kube::nameOf(*p));
    if (monitoring.empty()) return;
    static const json::json_pointer kProject("/spec/project");
    static const json::json_pointer kDestNs("/spec/destination/namespace");
    for (const auto& a : apps->store().list()) {
        if (!a->contains(kDestNs) || !a->at(kDestNs).is_string() || a->at(kDestNs) != ns) continue;
        std::string project = a->contains(kProject) && a->at(kProject).is_string()
                                  ? a->at(kProject).get<std::string>()
                                  : std::string();
        if (project.empty()) project = appengine::kDefaultProject;
        if (monitoring.count(project)) gate.add(kube::namespaceOf(*a) + "/" + kube::nameOf(*a));
    }
}

// Owned objects map to their Application through the tracking annotation, so one handler per
// kind serves every Application. Untracked objects concern the Applications that look for
// orphaned resources in their namespace.
cache::EventHandler requeueOwner(std::shared_ptr<workqueue::Gate> gate,
                                 const std::string& controlNs, cache::Informer* apps,
                                 cache::Informer* projects) {
    auto enqueue = [gate, controlNs, apps, projects](const cache::ObjectPtr& obj) {
        auto id = appengine::trackingIdOf(*obj);
        if (!id || id->instance.empty()) {
            requeueOrphanWatchers(*gate, controlNs, apps, projects, *obj);
            return;
        }
        auto underscore = id->instance.find('_');
        if (underscore == std::string::npos) {
            gate->add(controlNs + "/" + id->instance);
        } else {
            gate->add(id->instance.substr(0, underscore) + "/" +
                      id->instance.substr(underscore + 1));
        }
    };
    return cache::EventHandler{
        enqueue,
        [enqueue](const cache::ObjectPtr& oldObj, const cache::ObjectPtr& newObj) {
            enqueue(newObj);
            // An object whose tracking id changed hands: both owners re-compare.
            if (appengine::trackingIdOf(*oldObj) != appengine::trackingIdOf(*newObj))
                enqueue(oldObj);
        },
        enqueue};
}

// A Canary that appears, goes or is pointed at another Deployment changes what counts as
// drift of its target, whichever Application deploys that: all are compared again (rare;
// status updates do not count).
cache::EventHandler requeueAllApplications(std::shared_ptr<workqueue::Gate> gate,
                                           cache::Informer* apps) {
    auto requeueAll = [gate, apps](const cache::ObjectPtr&) {
        for (const auto& a : apps->store().list())
            gate->add(kube::namespaceOf(*a) + "/" + kube::nameOf(*a));
    };
    static const json::json_pointer kTargetRef("/spec/targetRef");
    auto targetOf = [](const json& c) {
        return c.contains(kTargetRef) ? c.at(kTargetRef) : json();
    };
    return cache::EventHandler{
        requeueAll,
        [requeueAll, targetOf](const cache::ObjectPtr& oldObj, const cache::ObjectPtr& newObj) {
            if (targetOf(*oldObj) != targetOf(*newObj)) requeueAll(newObj);
        },
        requeueAll};
}

}  // namespace

LiveState::LiveState(kube::KubeClient& client, cache::SharedInformerFactory& informers,
                     const Clock& clock, const Options& opts, std::shared_ptr<workqueue::Gate> gate,
                     const BaseInformers& base)
    : client_(client),
      informers_(informers),
      clock_(clock),
      opts_(opts),
      gate_(std::move(gate)),
      base_(base) {}

appengine::ScopeLookup LiveState::scopeLookup() {
    return [this](const std::string& apiVersion, const std::string& kind) -> std::optional<bool> {
        const auto key = std::make_pair(apiVersion, kind);
        {
            std::lock_guard lock(mu_);
            auto it = unknownKinds_.find(key);
            if (it != unknownKinds_.end()) {
                if (clock_.now() < it->second) return std::nullopt;
                unknownKinds_.erase(it);
            }
        }
        try {
            return client_.resourceFor(kube::GroupVersionKind::fromApiVersion(apiVersion, kind))
                .namespaced;
        } catch (const kube::ApiError& e) {
            if (!e.isNotFound()) throw;
            std::lock_guard lock(mu_);
            unknownKinds_[key] = clock_.now() + kUnknownKindTtl;
            return std::nullopt;
        }
    };
}

void LiveState::forgetUnknownKinds() {
    std::lock_guard lock(mu_);
    unknownKinds_.clear();
}

std::set<kube::GroupVersionKind> LiveState::kindsOf(
    const std::vector<json>& objects, const std::vector<appengine::InventoryEntry>& inventory) {
    std::set<kube::GroupVersionKind> kinds;
    for (const auto& o : objects) {
        kube::GroupVersionKind gvk = kube::GroupVersionKind::of(o);
        // A Deployment may be a Canary's target: the Canaries are watched too (when their CRD
        // is installed; ensureInformers skips kinds the cluster does not serve).
        if (gvk.group == "apps" && gvk.kind == "Deployment") kinds.insert(kCanaryGvk);
        kinds.insert(std::move(gvk));
    }
    for (const auto& e : inventory) kinds.insert(detail::gvkOf(e.group, e.version, e.kind));
    return kinds;
}

cache::ScopedInformer* LiveState::informerFor(const kube::GroupVersionKind& gvk) {
    std::lock_guard lock(mu_);
    auto it = managed_.find(gvk);
    return it == managed_.end() ? nullptr : it->second.get();
}

cache::ScopedInformer::Sync LiveState::ensureInformers(
    const std::set<kube::GroupVersionKind>& kinds, std::chrono::milliseconds wait) {
    using Sync = cache::ScopedInformer::Sync;
    std::vector<cache::ScopedInformer*> needed;
    bool created = false;
    auto scope = scopeLookup();
    for (const auto& gvk : kinds) {
        if (cache::ScopedInformer* existing = informerFor(gvk)) {
            needed.push_back(existing);
            continue;
        }
        // Kinds the cluster does not serve (a custom resource whose CRD this sync creates)
        // get their informer once discovery knows them.
        const std::optional<bool> namespaced = scope(gvk.apiVersion(), gvk.kind);
        if (!namespaced) continue;
        // Cluster-scoped kinds are not ours to watch in namespaced mode (scopeViolations
        // refuses them in manifests).
        if (!*namespaced && !opts_.managedScope.clusterResources) continue;
        cache::InformerOptions io;
        io.transform = [](json& obj) {
            dropUnread(obj);
            cache::packManagedFields(obj);  // read by compare and drift attribution only
        };
        io.backoff = {std::chrono::milliseconds(200), 2.0, std::chrono::milliseconds(10000)};
        auto scoped = std::make_unique<cache::ScopedInformer>(
            informers_, gvk, io, opts_.managedScope.namespaces, *namespaced);
        cache::ScopedInformer* informer = nullptr;
        {
            std::lock_guard lock(mu_);
            auto [it, inserted] = managed_.emplace(gvk, std::move(scoped));
            informer = it->second.get();
            if (!inserted) {
                needed.push_back(informer);
                continue;
            }
        }
        informer->addEventHandler(
            requeueOwner(gate_, opts_.controlNamespace, base_.applications, base_.projects));
        if (gvk == kCanaryGvk && base_.applications)
            informer->addEventHandler(requeueAllApplications(gate_, base_.applications));
        created = true;
        needed.push_back(informer);
    }
    if (created) informers_.startAll();
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (cache::ScopedInformer* informer : needed) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        Sync sync = informer->waitForSync(std::max(left, std::chrono::milliseconds(0)));
        if (sync.state != cache::ScopedInformer::SyncState::Synced) return sync;
    }
    return Sync{cache::ScopedInformer::SyncState::Synced, ""};
}

std::string LiveState::connectionError(const std::set<kube::GroupVersionKind>& kinds) {
    for (const auto& gvk : kinds)
        if (cache::ScopedInformer* informer = informerFor(gvk))
            if (auto error = informer->connectionError()) return *error;
    return "";
}

std::string LiveState::connectionError() {
    std::set<kube::GroupVersionKind> kinds;
    {
        std::lock_guard lock(mu_);
        for (const auto& [gvk, informer] : managed_) kinds.insert(gvk);
    }
    return connectionError(kinds);
}

std::size_t LiveState::cachedObjects() {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& [gvk, informer] : managed_) n += informer->size();
    return n;
}

std::shared_ptr<const json> LiveState::liveObject(const kube::GroupVersionKind& gvk,
                                                  const std::string& ns, const std::string& name) {
    cache::ScopedInformer* informer = informerFor(gvk);
    if (!informer) return nullptr;
    return informer->get(ns, name);
}

std::vector<cache::ObjectPtr> LiveState::namespaceObjects(const std::string& ns) {
    std::vector<cache::ScopedInformer*> informers;
    {
        std::lock_guard lock(mu_);
        for (const auto& [gvk, informer] : managed_) informers.push_back(informer.get());
    }
    std::vector<cache::ObjectPtr> out;
    for (cache::ScopedInformer* informer : informers) {
        if (!informer->covers(ns) || !informer->hasSynced()) continue;
        for (auto& o : informer->listNamespace(ns)) out.push_back(std::move(o));
    }
    return out;
}

void LiveState::waitForCaches(const SyncOutcome& outcome, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (const auto& w : outcome.written) {
        for (;;) {
            auto live = liveObject(w.gvk, w.ns, w.name);
            if (cache::ScopedInformer* cached = informerFor(w.gvk);
                !cached || !cached->covers(w.ns))
                break;
            if (live &&
                runtime::resourceVersionReached(kube::resourceVersionOf(*live), w.resourceVersion))
                break;
            if (std::chrono::steady_clock::now() >= deadline) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
}

void LiveState::compareInto(Desired& desired, const AppRef& ref,
                            const appengine::ApplicationSpec& spec,
                            std::shared_ptr<const appengine::CompareMemo> memo) {
    // ResourceKey has no version: which version each key is desired (or recorded) at, built
    // only when compare() looks beyond its memo.
    std::optional<std::map<appengine::ResourceKey, std::string>> versions;
    auto versionOf = [&](const appengine::ResourceKey& k) -> const std::string* {
        if (!versions) {
            versions.emplace();
            for (const auto& e : desired.inventory) versions->emplace(e.key(), e.version);
            for (const auto& o : desired.prepared->objects)
                (*versions)[appengine::ResourceKey::of(o)] = kube::GroupVersionKind::of(o).version;
        }
        auto v = versions->find(k);
        return v == versions->end() ? nullptr : &v->second;
    };
    appengine::CompareInput in;
    in.instance = ref.instance;
    in.desired =
        std::shared_ptr<const std::vector<json>>(desired.prepared, &desired.prepared->objects);
    in.inventory = desired.inventory;
    in.ignore = spec.ignoreDifferences;
    in.manager = opts_.fieldManager;
    in.live = [&](const appengine::ResourceKey& k) -> std::shared_ptr<const json> {
        const std::string* v = versionOf(k);
        if (!v) return nullptr;
        return liveObject(detail::gvkOf(k.group, *v, k.kind), k.ns, k.name);
    };
    in.liveAt = [&](const appengine::ResourceKey& k,
                    const std::string& version) -> std::shared_ptr<const json> {
        return liveObject(detail::gvkOf(k.group, version, k.kind), k.ns, k.name);
    };
    // The Canaries of the namespaces this Application deploys Deployments to.
    if (cache::ScopedInformer* canaries = informerFor(kCanaryGvk)) {
        std::set<std::string> namespaces;
        for (const auto& o : desired.prepared->objects)
            if (kube::GroupVersionKind::of(o).group == "apps" &&
                o.value("kind", "") == "Deployment")
                namespaces.insert(kube::namespaceOf(o));
        for (const auto& ns : namespaces)
            for (auto& c : canaries->listNamespace(ns)) in.canaries.push_back(std::move(c));
    }
    in.desiredKey = desired.preparedKey;
    in.memo = std::move(memo);
    desired.compared = appengine::compare(in);
}

}  // namespace sluice::appcontroller
