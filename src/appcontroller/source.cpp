// Git source resolution, rendering, credentials and the managed-kind caches.
#include <spdlog/spdlog.h>

#include "impl.h"
#include "sluice/source/repository.h"
#include "sluice/util/strings.h"
#include "util.h"

namespace sluice::appcontroller {

namespace {

// A kind discovery did not know is asked for again after this long (or after a CRD apply).
constexpr auto kUnknownKindTtl = std::chrono::seconds(10);
// A failed resolve is reported again without fetching for this long (unless forced).
constexpr auto kFailedResolveReuse = std::chrono::seconds(5);

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

// The repository Secrets the controller's informers hold.
std::vector<std::shared_ptr<const json>> repositorySecrets(
    const std::vector<cache::Informer*>& secretInformers) {
    std::vector<std::shared_ptr<const json>> secrets;
    for (cache::Informer* informer : secretInformers) {
        auto listed = informer->store().list();
        secrets.insert(secrets.end(), listed.begin(), listed.end());
    }
    return secrets;
}

}  // namespace

json recordedOperation(const json& operation) {
    json out = operation;
    if (out.is_object() && out.contains("sync") && out["sync"].is_object())
        for (const char* k : {"source", "sources"})
            if (out["sync"].contains(k)) out["sync"][k] = source::redactedSources(out["sync"][k]);
    return out;
}

json revisionAndSource(const AppRef& ref, const app::ApplicationSpec& spec, const Desired& d) {
    const json& rawSpec = ref.object.at("spec");
    if (spec.multiSource)
        return {{"revisions", d.revisions},
                {"sources", source::redactedSources(rawSpec.value("sources", json::array()))}};
    return {{"revision", d.revision.sha},
            {"source", source::redactedSources(rawSpec.value("source", json::object()))}};
}

std::string recordedRevision(const json& entry) {
    if (!entry.is_object()) return {};
    if (auto it = entry.find("revisions"); it != entry.end() && it->is_array()) {
        std::vector<std::string> parts;
        for (const auto& r : *it) parts.push_back(r.is_string() ? r.get<std::string>() : "");
        return join(parts, ",");
    }
    auto it = entry.find("revision");
    return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
}

git::Repository ApplicationController::Impl::repositoryFor(const std::string& repoURL) {
    return source::repositoryFromSecrets(repoURL, repositorySecrets(secretInformers));
}

git::Revision ApplicationController::Impl::resolveTarget(const app::Source& source,
                                                         Clock::TimePoint freshAfter,
                                                         bool& fetched) {
    fetched = false;
    const auto key = std::make_pair(source::normaliseRepoUrl(source.repoURL) +
                                        (source.chart.empty() ? "" : "\n" + source.chart),
                                    source.targetRevision);
    const auto now = clock.now();
    {
        std::lock_guard lock(mu);
        auto it = sources.find(key);
        if (it != sources.end() && it->second.resolvedAt >= freshAfter) {
            const auto age = now - it->second.resolvedAt;
            const Clock::TimePoint::duration reuse =
                std::min<Clock::TimePoint::duration>(opts.pollInterval, kFailedResolveReuse);
            if (it->second.error && age < reuse) throw *it->second.error;
            if (!it->second.error && age < opts.pollInterval) return it->second.revision;
        }
    }
    counters.gitFetches++;
    git::Revision revision;
    // Entries are stamped with the time the fetch started: a refresh asked for while it ran
    // is not satisfied by it.
    try {
        revision = sourceService->resolve(source, source.targetRevision);
    } catch (const git::GitError& e) {
        counters.gitErrors++;
        std::lock_guard lock(mu);
        sources[key] = detail::SourceEntry{{}, now, e};
        throw;
    } catch (...) {
        counters.gitErrors++;
        throw;
    }
    fetched = true;
    std::lock_guard lock(mu);
    auto& entry = sources[key];
    if (entry.resolvedAt <= now) entry = detail::SourceEntry{revision, now, std::nullopt};
    return revision;
}

git::Revision ApplicationController::Impl::resolveExact(const app::Source& source,
                                                        const std::string& revision) {
    counters.gitFetches++;
    try {
        return sourceService->resolve(source, revision);
    } catch (...) {
        counters.gitErrors++;
        throw;
    }
}

std::vector<git::Revision> ApplicationController::Impl::resolveTargets(
    const app::ApplicationSpec& spec, Clock::TimePoint freshAfter, bool& fetched) {
    std::vector<git::Revision> out;
    fetched = false;
    for (const auto& source : spec.sources) {
        bool one = false;
        out.push_back(resolveTarget(source, freshAfter, one));
        fetched = fetched || one;
    }
    return out;
}

source::HelmCredentials ApplicationController::Impl::helmCredentialsFor(
    const std::string& repoURL) {
    return source::helmCredentialsFromSecrets(repoURL, repositorySecrets(secretInformers));
}

kube::ServerInfo ApplicationController::Impl::destinationInfo() {
    std::lock_guard lock(serverInfoMu);
    const auto now = clock.now();
    if (serverInfoReadAt && now - *serverInfoReadAt < std::chrono::minutes(5)) return serverInfo;
    try {
        serverInfo = client.serverInfo();
        serverInfoReadAt = now;
    } catch (const std::exception& e) {
        // Helm's defaults are used until the server answers; asked again at the next render.
        spdlog::warn("cannot read the cluster's version and API versions: {}", e.what());
    }
    return serverInfo;
}

std::vector<source::PluginDefinition> ApplicationController::Impl::pluginDefinitions() {
    std::lock_guard lock(pluginsMu);
    const auto now = clock.now();
    if (pluginsReadAt && now - *pluginsReadAt < std::chrono::seconds(5)) return plugins;
    pluginsReadAt = now;
    plugins.clear();
    try {
        const kube::GroupVersionKind gvk{"", "v1", "ConfigMap"};
        json cm = client.get(gvk, opts.controlNamespace, opts.pluginConfigMap);
        std::vector<std::string> errors;
        plugins = source::parsePluginConfigMap(cm, errors);
        for (const auto& e : errors)
            spdlog::warn("plugin ConfigMap {}/{}: {}", opts.controlNamespace, opts.pluginConfigMap,
                         e);
    } catch (const kube::ApiError& e) {
        if (!e.isNotFound())
            spdlog::warn("cannot read the plugin ConfigMap {}/{}: {}", opts.controlNamespace,
                         opts.pluginConfigMap, e.what());
    }
    return plugins;
}

app::ScopeLookup ApplicationController::Impl::scopeLookup() {
    return [this](const std::string& apiVersion, const std::string& kind) -> std::optional<bool> {
        const auto key = std::make_pair(apiVersion, kind);
        {
            std::lock_guard lock(mu);
            auto it = unknownKinds.find(key);
            if (it != unknownKinds.end()) {
                if (clock.now() < it->second) return std::nullopt;
                unknownKinds.erase(it);
            }
        }
        try {
            return client.resourceFor(kube::GroupVersionKind::fromApiVersion(apiVersion, kind))
                .namespaced;
        } catch (const kube::ApiError& e) {
            if (!e.isNotFound()) throw;
            std::lock_guard lock(mu);
            unknownKinds[key] = clock.now() + kUnknownKindTtl;
            return std::nullopt;
        }
    };
}

void ApplicationController::Impl::forgetUnknownKinds() {
    std::lock_guard lock(mu);
    unknownKinds.clear();
}

std::set<kube::GroupVersionKind> ApplicationController::Impl::kindsOf(
    const std::vector<json>& objects, const std::vector<app::InventoryEntry>& inventory) {
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

cache::ScopedInformer* ApplicationController::Impl::managedInformer(
    const kube::GroupVersionKind& gvk) {
    std::lock_guard lock(mu);
    auto it = managed.find(gvk);
    return it == managed.end() ? nullptr : it->second.get();
}

namespace {

// Owned objects map to their Application through the tracking annotation, so one handler per
// kind serves every Application.
cache::EventHandler requeueOwner(std::shared_ptr<workqueue::Gate> gate,
                                 const std::string& controlNs) {
    auto enqueue = [gate, controlNs](const cache::ObjectPtr& obj) {
        auto id = app::trackingIdOf(*obj);
        if (!id || id->instance.empty()) return;
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
            if (app::trackingIdOf(*oldObj) != app::trackingIdOf(*newObj)) enqueue(oldObj);
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

cache::ScopedInformer::Sync ApplicationController::Impl::ensureInformers(
    const std::set<kube::GroupVersionKind>& kinds, std::chrono::milliseconds wait) {
    using Sync = cache::ScopedInformer::Sync;
    std::vector<cache::ScopedInformer*> needed;
    bool created = false;
    auto scope = scopeLookup();
    for (const auto& gvk : kinds) {
        if (cache::ScopedInformer* existing = managedInformer(gvk)) {
            needed.push_back(existing);
            continue;
        }
        // Kinds the cluster does not serve (a custom resource whose CRD this sync creates)
        // get their informer once discovery knows them.
        const std::optional<bool> namespaced = scope(gvk.apiVersion(), gvk.kind);
        if (!namespaced) continue;
        // Cluster-scoped kinds are not ours to watch in namespaced mode (scopeViolations
        // refuses them in manifests).
        if (!*namespaced && !opts.managedScope.clusterResources) continue;
        cache::InformerOptions io;
        io.transform = [](json& obj) {
            dropUnread(obj);
            cache::packManagedFields(obj);  // read by compare and drift attribution only
        };
        io.backoff = {std::chrono::milliseconds(200), 2.0, std::chrono::milliseconds(10000)};
        auto scoped = std::make_unique<cache::ScopedInformer>(
            informers, gvk, io, opts.managedScope.namespaces, *namespaced);
        cache::ScopedInformer* informer = nullptr;
        {
            std::lock_guard lock(mu);
            auto [it, inserted] = managed.emplace(gvk, std::move(scoped));
            informer = it->second.get();
            if (!inserted) {
                needed.push_back(informer);
                continue;
            }
        }
        informer->addEventHandler(requeueOwner(gate, opts.controlNamespace));
        if (gvk == kCanaryGvk && appInformer)
            informer->addEventHandler(requeueAllApplications(gate, appInformer));
        created = true;
        needed.push_back(informer);
    }
    if (created) informers.startAll();
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (cache::ScopedInformer* informer : needed) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        Sync sync = informer->waitForSync(std::max(left, std::chrono::milliseconds(0)));
        if (sync.state != cache::ScopedInformer::SyncState::Synced) return sync;
    }
    return Sync{cache::ScopedInformer::SyncState::Synced, ""};
}

std::shared_ptr<const json> ApplicationController::Impl::liveObject(
    const kube::GroupVersionKind& gvk, const std::string& ns, const std::string& name) {
    cache::ScopedInformer* informer = managedInformer(gvk);
    if (!informer) return nullptr;
    return informer->get(ns, name);
}

void ApplicationController::Impl::compareInto(Desired& desired, const AppRef& ref,
                                              const app::ApplicationSpec& spec) {
    // ResourceKey has no version: remember which version each key is desired (or recorded) at.
    std::map<app::ResourceKey, std::string> versions;
    for (const auto& e : desired.inventory) versions.emplace(e.key(), e.version);
    for (const auto& o : desired.prepared->objects)
        versions[app::ResourceKey::of(o)] = kube::GroupVersionKind::of(o).version;
    app::CompareInput in;
    in.instance = ref.instance;
    in.desired =
        std::shared_ptr<const std::vector<json>>(desired.prepared, &desired.prepared->objects);
    in.inventory = desired.inventory;
    in.ignore = spec.ignoreDifferences;
    in.manager = opts.fieldManager;
    in.live = [&](const app::ResourceKey& k) -> std::shared_ptr<const json> {
        auto v = versions.find(k);
        if (v == versions.end()) return nullptr;
        return liveObject(detail::gvkOf(k.group, v->second, k.kind), k.ns, k.name);
    };
    // The Canaries of the namespaces this Application deploys Deployments to.
    if (cache::ScopedInformer* canaries = managedInformer(kCanaryGvk)) {
        std::set<std::string> namespaces;
        for (const auto& o : desired.prepared->objects)
            if (kube::GroupVersionKind::of(o).group == "apps" &&
                o.value("kind", "") == "Deployment")
                namespaces.insert(kube::namespaceOf(o));
        for (const auto& ns : namespaces)
            for (auto& c : canaries->listNamespace(ns)) in.canaries.push_back(std::move(c));
    }
    in.desiredKey = desired.preparedKey;
    {
        std::lock_guard lock(mu);
        in.memo = apps[ref.key].compareMemo;
    }
    desired.compared = app::compare(in);
    std::lock_guard lock(mu);
    apps[ref.key].compareMemo = desired.compared.memo;
}

Desired ApplicationController::Impl::desiredFor(const AppRef& ref, const app::ApplicationSpec& spec,
                                                const std::vector<git::Revision>& revisions,
                                                const std::vector<app::InventoryEntry>& inventory) {
    Desired d;
    d.inventory = inventory;
    for (const auto& r : revisions) d.revisions.push_back(r.sha);
    d.revision =
        revisions.size() == 1 ? revisions.front() : git::Revision{join(d.revisions, ","), ""};
    const kube::ServerInfo info = destinationInfo();
    const source::RenderRequest request = sourceService->request(
        ref.name, ref.ns, spec, d.revisions, {info.version, info.groupVersions});
    const std::string& renderKey = request.key;
    const std::string preparedKey =
        renderKey + "\n" + spec.destination.namespace_ + "\n" + ref.instance;
    auto types = sourceTypes.get(renderKey);
    if (auto hit = preparedStates.get(preparedKey); hit && types) {
        d.prepared = std::move(hit);
        d.preparedKey = preparedKey;
        d.sourceTypes = *types;
        return d;
    }
    detail::Rendered rendered = sourceService->render(request);
    d.sourceTypes = rendered->sourceTypes;
    sourceTypes.put(renderKey, std::make_shared<const std::vector<std::string>>(d.sourceTypes), 1);
    auto prepared = std::make_shared<const app::PreparedObjects>(source::prepareRendered(
        rendered->objects, spec.destination.namespace_, ref.instance, scopeLookup()));
    d.prepared = prepared;
    // Only a complete result is kept: a kind unknown now may be served after a CRD install.
    if (prepared->errors.empty()) {
        preparedStates.put(preparedKey, prepared, prepared->objects.size());
        d.preparedKey = preparedKey;
    }
    return d;
}

int ApplicationController::Impl::refreshRepository(const std::string& repoUrl,
                                                   const std::string& branch) {
    ensureBaseInformers();
    const std::string norm = source::normaliseRepoUrl(repoUrl);
    // Whether `branch` is the default one, as far as a resolve of HEAD told us.
    bool branchIsDefault = branch.empty();
    bool defaultKnown = false;
    {
        std::lock_guard lock(mu);
        auto it = sources.find({norm, "HEAD"});
        if (it == sources.end()) it = sources.find({norm, ""});
        if (it != sources.end() && !it->second.revision.ref.empty() &&
            it->second.revision.ref != "HEAD") {
            defaultKnown = true;
            const std::string& ref = it->second.revision.ref;
            if (ref == branch || ref == "refs/heads/" + branch) branchIsDefault = true;
        }
    }
    int queued = 0;
    for (const auto& obj : appInformer->store().list()) {
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

}  // namespace sluice::appcontroller
