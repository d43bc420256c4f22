// The Application controller: lifecycle, one reconcile, deletion, and status writes.
#include "sluice/appcontroller/controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

#include "impl.h"
#include "sluice/appcontroller/source.h"
#include "sluice/cache/store.h"
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
      git(g),
      opts(std::move(o)),
      clock(opts.clock ? *opts.clock : SystemClock::instance()),
      runtime(workqueue::Options{opts.clock, std::chrono::milliseconds(5),
                                 ExponentialBackoff{std::chrono::milliseconds(500), 2.0,
                                                    std::chrono::milliseconds(300000)}},
              opts.concurrency),
      gate(runtime.gate()),
      appGvk{app::kGroup, app::kVersion, app::kKind} {
    opts.sources.plugins = [this] { return pluginDefinitions(); };
    source::ServiceHooks hooks;
    hooks.gitRepository = [this](const std::string& url) { return repositoryFor(url); };
    hooks.helmCredentials = [this](const std::string& url) { return helmCredentialsFor(url); };
    sourceService = std::make_unique<source::SourceService>(git, opts.sources, std::move(hooks),
                                                            opts.renderConcurrency);
    if (opts.events) {
        events = opts.events;
    } else {
        ownEvents = std::make_unique<kube::KubeEventRecorder>(client, "sluice-controller",
                                                              opts.controlNamespace, opts.clock);
        events = ownEvents.get();
    }
}

ApplicationController::Impl::~Impl() {
    runtime.stop();
}

void ApplicationController::Impl::ensureBaseInformers() {
    std::lock_guard lock(baseMu);
    if (appInformer) return;
    cache::InformerOptions ao;
    ao.ns = opts.watchNamespace;
    ao.resyncPeriod = opts.resyncPeriod;
    // Applications are read for their spec and a few status fields: the managedFields go, and
    // the bulky status parts (per-resource lists) stay as text until a write compares them.
    ao.transform = [](json& obj) {
        cache::dropManagedFields(obj);
        if (auto st = obj.find("status"); st != obj.end() && st->is_object()) app::packStatus(*st);
    };
    appInformer = &informers.informerFor(appGvk, ao);
    auto gateRef = gate;
    auto enqueue = [gateRef](const cache::ObjectPtr& o) {
        gateRef->add(kube::namespaceOf(*o) + "/" + kube::nameOf(*o));
    };
    appInformer->addEventHandler(cache::EventHandler{
        enqueue, [enqueue](const cache::ObjectPtr&, const cache::ObjectPtr& n) { enqueue(n); },
        enqueue});

    // Repository credentials: a changed Secret may fix an Application stuck on an auth error.
    cache::Informer* apps = appInformer;
    auto requeueAll = [gateRef, apps](const cache::ObjectPtr&) {
        for (const auto& a : apps->store().list())
            gateRef->add(kube::namespaceOf(*a) + "/" + kube::nameOf(*a));
    };
    for (const char* selector : {"sluice.io/secret-type", "argocd.argoproj.io/secret-type"}) {
        cache::InformerOptions so;
        so.ns = opts.controlNamespace;
        so.labelSelector = selector;
        cache::Informer& secrets =
            informers.informerFor(kube::GroupVersionKind{"", "v1", "Secret"}, so);
        secrets.addEventHandler(cache::EventHandler{
            requeueAll,
            [requeueAll](const cache::ObjectPtr&, const cache::ObjectPtr& n) { requeueAll(n); },
            requeueAll});
        secretInformers.push_back(&secrets);
    }
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
    if (!appInformer->waitForSync(left())) return false;
    for (cache::Informer* s : secretInformers)
        if (!s->waitForSync(left())) return false;
    return true;
}

void ApplicationController::Impl::start() {
    if (runtime.stopped()) return;
    ensureBaseInformers();
    runtime.start([this](const std::string& key) {
        ReconcileOutcome out = reconcileKey(key);
        runtime::Result result;
        result.backoff = out.rateLimited;
        result.requeueAfter = out.requeueAfter.value_or(opts.pollInterval);
        return result;
    });
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
// Reading the Application and writing it back

bool ApplicationController::Impl::loadApp(AppRef& ref) {
    auto cached = appInformer->store().get(ref.ns, ref.name);
    if (!cached) return false;
    // Everything but the status is copied (small); the status, which holds a line per
    // resource, is shared with the cache.
    json object = json::object();
    std::shared_ptr<const json> status;
    for (auto it = cached->begin(); it != cached->end(); ++it) {
        if (it.key() != "status") {
            object[it.key()] = it.value();
        } else if (it->is_object()) {
            status = std::shared_ptr<const json>(cached, &*it);
        }
    }
    if (!status) status = std::make_shared<const json>(json::object());
    if (auto unseen = pending.unseen(ref.key, kube::resourceVersionOf(*cached))) {
        const auto& [version, writes] = *unseen;
        if (writes.status) status = writes.status;
        if (writes.operationRemoved) object.erase("operation");
        if (!writes.annotationsRemoved.empty() && object["metadata"].contains("annotations"))
            for (const auto& a : writes.annotationsRemoved)
                object["metadata"]["annotations"].erase(a);
        object["metadata"]["resourceVersion"] = version;
    }
    ref.object = std::move(object);
    ref.status = std::move(status);
    return true;
}

std::string ApplicationController::Impl::operationPhase(const AppRef& ref) {
    AppRef fresh{ref.ns, ref.name, ref.key, ref.instance, {}, nullptr};
    if (!loadApp(fresh)) return "";
    return detail::strAt(*fresh.status, "/operationState/phase"_json_pointer);
}

void ApplicationController::Impl::recordPending(
    const std::string& key, const json& response,
    const std::function<void(detail::UnseenWrites&)>& update) {
    pending.record(key, kube::resourceVersionOf(response), update);
}

bool ApplicationController::Impl::writeStatus(AppRef& ref, const json& updates) {
    // Compared as the cache keeps them (app::packStatus), whichever form either side is in.
    json cur = *ref.status;
    app::packStatus(cur);
    json packedUpdates = updates;
    app::packStatus(packedUpdates);
    // Only the fields that differ are written: a reconcile that finds nothing new writes
    // nothing at all, not even reconciledAt (which dates the last change of status).
    std::vector<std::string> changed;
    for (auto it = packedUpdates.begin(); it != packedUpdates.end(); ++it) {
        auto c = cur.find(it.key());
        if (it->is_null() ? c != cur.end() : c == cur.end() || *c != *it)
            changed.push_back(it.key());
    }
    if (changed.empty()) return true;
    const std::string now = formatRfc3339(clock.wallNow());
    json ops = json::array();
    // A phase we set to Running may have been turned into Terminating by the user since: the
    // test makes such a write fail instead of overwriting the request.
    const std::string oldPhase = detail::strAt(cur, "/operationState/phase"_json_pointer);
    if (oldPhase == "Running")
        ops.push_back(
            {{"op", "test"}, {"path", "/status/operationState/phase"}, {"value", "Running"}});
    // What goes to the API is never packed, even where an update copied a cached field.
    auto sendable = [&](const std::string& k) {
        json one = {{k, updates[k]}};
        app::unpackStatus(one);
        return std::move(one[k]);
    };
    if (cur.empty()) {
        json whole = json::object();
        for (auto it = updates.begin(); it != updates.end(); ++it)
            if (!it->is_null()) whole[it.key()] = sendable(it.key());
        whole["reconciledAt"] = now;
        ops.push_back({{"op", "add"}, {"path", "/status"}, {"value", std::move(whole)}});
    } else {
        for (const auto& k : changed) {
            if (updates[k].is_null()) {
                ops.push_back({{"op", "remove"}, {"path", "/status/" + k}});
            } else {
                ops.push_back({{"op", "add"}, {"path", "/status/" + k}, {"value", sendable(k)}});
            }
        }
        ops.push_back({{"op", "add"}, {"path", "/status/reconciledAt"}, {"value", now}});
    }
    kube::PatchOptions po;
    po.subresource = "status";
    try {
        json response =
            client.patch(appGvk, ref.ns, ref.name, kube::PatchType::JsonPatch, ops.dump(), po);
        json storedStatus = response.contains("status") && response["status"].is_object()
                                ? std::move(response["status"])
                                : json::object();
        app::packStatus(storedStatus);
        auto stored = std::make_shared<const json>(std::move(storedStatus));
        recordPending(ref.key, response, [&](detail::UnseenWrites& p) { p.status = stored; });
        ref.status = stored;
        ref.object["metadata"]["resourceVersion"] = kube::resourceVersionOf(response);
        return true;
    } catch (const kube::ApiError& e) {
        if (e.isNotFound()) return true;  // deleted meanwhile
        if (oldPhase == "Running" && (e.isInvalid() || e.isConflict())) {
            json fresh = client.get(appGvk, ref.ns, ref.name);
            json freshStatus = fresh.contains("status") ? fresh["status"] : json::object();
            app::packStatus(freshStatus);
            ref.status = std::make_shared<const json>(std::move(freshStatus));
            fresh.erase("status");
            ref.object = std::move(fresh);
            spdlog::info("application {}: operation phase changed to {} while syncing", ref.key,
                         detail::strAt(*ref.status, "/operationState/phase"_json_pointer));
            return false;
        }
        throw;
    }
}

void ApplicationController::Impl::removeOperation(AppRef& ref) {
    if (!ref.object.contains("operation")) return;
    try {
        json response =
            client.patch(appGvk, ref.ns, ref.name, kube::PatchType::Merge, R"({"operation":null})");
        recordPending(ref.key, response,
                      [](detail::UnseenWrites& p) { p.operationRemoved = true; });
        ref.object.erase("operation");
    } catch (const kube::ApiError& e) {
        if (!e.isNotFound()) throw;
    }
}

void ApplicationController::Impl::removeAnnotations(AppRef& ref,
                                                    const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    json patch = {{"metadata", {{"annotations", json::object()}}}};
    for (const auto& k : keys) patch["metadata"]["annotations"][k] = nullptr;
    try {
        json response =
            client.patch(appGvk, ref.ns, ref.name, kube::PatchType::Merge, patch.dump());
        recordPending(ref.key, response, [&](detail::UnseenWrites& p) {
            p.annotationsRemoved.insert(keys.begin(), keys.end());
        });
    } catch (const kube::ApiError& e) {
        if (!e.isNotFound()) throw;
    }
}

void ApplicationController::Impl::event(const AppRef& ref, kube::EventType type,
                                        const std::string& reason, const std::string& message) {
    events->record(ref.object, type, reason, message);
}

void ApplicationController::Impl::eventOnce(const AppRef& ref, kube::EventType type,
                                            const std::string& reason, const std::string& message) {
    {
        std::lock_guard lock(mu);
        std::string& last = apps[ref.key].lastEvent[reason];
        if (last == message) return;
        last = message;
    }
    event(ref, type, reason, message);
}

// ------------------------------------------------------------------------------------------
// Deletion with the resources finalizer

ReconcileOutcome ApplicationController::Impl::handleDeletion(AppRef& ref) {
    ReconcileOutcome out;
    out.record.key = ref.key;
    const json& finalizers = ref.object["metadata"].value("finalizers", json::array());
    std::optional<std::size_t> index;
    std::string finalizer;
    for (std::size_t i = 0; i < finalizers.size(); ++i) {
        if (finalizers[i] == app::kFinalizer || finalizers[i] == app::kArgoFinalizer) {
            index = i;
            finalizer = finalizers[i];
            break;
        }
    }
    if (!index) return out;  // without the finalizer the objects stay

    app::ParseResult parsed = app::parseApplication(ref.object);  // errors do not stop cleanup
    kube::DeleteOptions del;
    del.propagationPolicy =
        propagationPolicy(parsed.spec.syncPolicy.options.prunePropagationPolicy);
    const auto inventory = app::parseInventory(fieldOr(*ref.status, "inventory", json::array()));
    std::set<kube::GroupVersionKind> kinds = kindsOf({}, inventory);
    if (auto caches = ensureInformers(kinds, kCacheWait);
        caches.state != cache::ScopedInformer::SyncState::Synced) {
        out.record.succeeded = false;
        out.record.error = caches.error.empty() ? "waiting for watch caches" : caches.error;
        out.requeueAfter = kNotReadyRequeue;
        return out;
    }
    int remaining = 0;
    for (const auto& gvk : kinds) {
        cache::ScopedInformer* informer = managedInformer(gvk);
        if (!informer) continue;  // the kind is gone from the cluster, and its objects with it
        for (const auto& obj : informer->list()) {
            if (!app::isTrackedBy(*obj, ref.instance)) continue;
            if (app::objectSyncOptionsOf(*obj).deleteDisabled) continue;
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
    const std::string path = "/metadata/finalizers/" + std::to_string(*index);
    json ops = json::array({{{"op", "test"}, {"path", path}, {"value", finalizer}},
                            {{"op", "remove"}, {"path", path}}});
    try {
        client.patch(appGvk, ref.ns, ref.name, kube::PatchType::JsonPatch, ops.dump());
        spdlog::info("application {}: resources deleted, finalizer {} removed", ref.key, finalizer);
    } catch (const kube::ApiError& e) {
        if (e.isNotFound()) return out;
        if (e.isInvalid() || e.isConflict()) {
            out.requeueAfter = std::chrono::milliseconds(0);  // finalizers changed: look again
            return out;
        }
        throw;
    }
    return out;
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
    impl_->runtime.stop();
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
