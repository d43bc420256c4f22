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
// A spec change takes a revision resolved at most this long ago.
constexpr auto kSpecChangeFetchReuse = std::chrono::seconds(1);

const json kNoValue;
const json kEmptyObject = json::object();
const json kEmptyArray = json::array();

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

// Whether syncing would change anything: something desired differs or is missing, or an object
// is to be pruned. Objects owned by another Application count: the sync reports the conflict.
bool needsSync(const app::CompareResult& compared, bool prune) {
    for (const auto& r : compared.resources) {
        if (r.desired && r.state != app::SyncState::Synced) return true;
        if (!r.desired && r.requiresPruning && prune && !r.pruneDisabled) return true;
    }
    return false;
}

int64_t generationOf(const json& obj) {
    const json* g = nullptr;
    if (obj.contains("metadata") && obj["metadata"].contains("generation"))
        g = &obj["metadata"]["generation"];
    return g && g->is_number_integer() ? g->get<int64_t>() : 0;
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
// Reconcile

ReconcileOutcome ApplicationController::Impl::reconcile(const std::string& ns,
                                                        const std::string& name) {
    ensureBaseInformers();
    ReconcileOutcome out;
    ReconcileRecord& rec = out.record;
    const std::string key = ns + "/" + name;
    rec.key = key;
    AppRef ref{ns, name, key, app::instanceName(ns, name, opts.controlNamespace), {}, nullptr};
    if (!loadApp(ref)) {
        pending.forget(key);
        std::lock_guard lock(mu);
        apps.erase(key);
        return out;
    }
    if (ref.object["metadata"].contains("deletionTimestamp")) return handleDeletion(ref);

    // The status as this reconcile found it, and the fields it wants to change.
    const std::shared_ptr<const json> baselineHold = ref.status;
    const json& baseline = *baselineHold;
    json updates = json::object();
    json conditions = fieldOr(baseline, "conditions", json::array());
    if (!conditions.is_array()) conditions = json::array();
    const std::string now = formatRfc3339(clock.wallNow());
    const int64_t generation = generationOf(ref.object);
    updates["observedGeneration"] = generation;
    auto withConditions = [&] { updates["conditions"] = conditions.empty() ? json() : conditions; };
    auto currentSync = [&](const std::string& syncStatus) {
        json sync = fieldOr(baseline, "sync", json::object());
        if (!sync.is_object()) sync = json::object();
        sync["status"] = syncStatus;
        return sync;
    };

    app::ParseResult parsed = app::parseApplication(ref.object);
    std::vector<std::string> specErrors, opErrors;
    for (auto& e : parsed.errors)
        (e.rfind("operation", 0) == 0 ? opErrors : specErrors).push_back(e);
    if (!specErrors.empty()) {
        const std::string msg = join(specErrors, "; ");
        app::setCondition(conditions, app::kInvalidSpecError, msg, now);
        withConditions();
        updates["sync"] = currentSync("Unknown");
        eventOnce(ref, kube::EventType::Warning, "InvalidSpec", msg);
        writeStatus(ref, updates);
        rec.succeeded = false;
        rec.error = msg;
        rec.syncStatus = "Unknown";
        rec.health = detail::strAt(baseline, "/health/status"_json_pointer);
        return out;
    }
    app::removeCondition(conditions, app::kInvalidSpecError);
    {
        std::lock_guard lock(mu);
        apps[key].lastEvent.erase("InvalidSpec");
    }
    const app::ApplicationSpec& spec = parsed.spec;
    // As recorded in status: without credentials in URLs.
    const json rawSource = redactedSources(ref.object["spec"].value("source", json::object()));
    const json rawSources = redactedSources(ref.object["spec"].value("sources", json::array()));
    const json rawDestination = ref.object["spec"].value("destination", json::object());

    // Source: resolve (at most once per poll interval unless something asks for it) and render.
    std::vector<std::string> refreshAnnotations;
    if (ref.object["metadata"].contains("annotations") &&
        ref.object["metadata"]["annotations"].is_object())
        for (const char* a : {app::kRefreshAnnotation, app::kArgoRefreshAnnotation})
            if (ref.object["metadata"]["annotations"].contains(a)) refreshAnnotations.push_back(a);
    // How fresh the resolved revision must be: an explicit refresh wants a fetch from now on;
    // a changed spec accepts one from a moment ago (so a thousand new Applications of one
    // repository share a fetch); otherwise whatever the poll interval allows.
    Clock::TimePoint freshAfter{};
    const auto steadyStart = clock.now();
    // A requested operation (sync, rollback) is judged against the branch as it is now.
    if (!refreshAnnotations.empty() || ref.object.contains("operation")) freshAfter = steadyStart;
    {
        std::lock_guard lock(mu);
        detail::AppState& st = apps[key];
        if (st.refreshRequestedAt) freshAfter = std::max(freshAfter, *st.refreshRequestedAt);
        st.refreshRequestedAt.reset();
        const json& observed = fieldOr(baseline, "observedGeneration", kNoValue);
        const bool specChanged =
            st.comparedGeneration >= 0
                ? st.comparedGeneration != generation
                : !(observed.is_number_integer() && observed.get<int64_t>() == generation);
        if (specChanged) freshAfter = std::max(freshAfter, steadyStart - kSpecChangeFetchReuse);
    }
    const auto inventory = app::parseInventory(fieldOr(baseline, "inventory", json::array()));
    bool fetched = false;
    Desired desired;
    std::string comparisonError;
    try {
        desired = desiredFor(ref, spec, resolveTargets(spec, freshAfter, fetched), inventory);
        if (!desired.prepared->errors.empty())
            comparisonError = join(desired.prepared->errors, "; ");
        else if (auto outside = app::scopeViolations(desired.prepared->objects, opts.managedScope);
                 !outside.empty())
            comparisonError = join(outside, "; ");
    } catch (const git::GitError& e) {
        comparisonError = git::scrubUrl(e.what());
    } catch (const render::RenderError& e) {
        comparisonError = git::scrubUrl(e.what());
    }
    // Live state we may not read (RBAC) is missing information like a failed render.
    bool cachesPending = false;
    if (comparisonError.empty()) {
        auto caches = ensureInformers(kindsOf(desired.prepared->objects, inventory), kCacheWait);
        if (caches.state == cache::ScopedInformer::SyncState::Failed)
            comparisonError = "cannot watch the application's resources: " + caches.error;
        cachesPending = caches.state == cache::ScopedInformer::SyncState::Pending;
    }
    removeAnnotations(ref, refreshAnnotations);
    if (!comparisonError.empty()) {
        app::setCondition(conditions, app::kComparisonError, comparisonError, now);
        // Conditions describe the present: whether a sync would fail is unknown now.
        app::removeCondition(conditions, app::kSyncError);
        withConditions();
        updates["sync"] = currentSync("Unknown");
        eventOnce(ref, kube::EventType::Warning, "ComparisonError", comparisonError);
        writeStatus(ref, updates);
        spdlog::warn("application {}: comparison error: {}", key, comparisonError);
        rec.succeeded = false;
        rec.error = comparisonError;
        rec.syncStatus = "Unknown";
        rec.revision = desired.revision.sha;
        rec.health = detail::strAt(baseline, "/health/status"_json_pointer);
        out.rateLimited = true;
        return out;
    }
    app::removeCondition(conditions, app::kComparisonError);
    {
        std::lock_guard lock(mu);
        detail::AppState& st = apps[key];
        st.lastEvent.erase("ComparisonError");
        st.comparedGeneration = generation;
    }
    rec.revision = desired.revision.sha;

    if (cachesPending) {
        rec.succeeded = false;
        rec.error = "waiting for the watch caches of the application's kinds to sync";
        out.requeueAfter = kNotReadyRequeue;
        return out;
    }
    compareInto(desired, ref, spec);

    // Decide whether to sync.
    const json& opState = fieldOr(baseline, "operationState", kEmptyObject);
    const std::string phase = detail::strAt(opState, "/phase"_json_pointer);
    std::optional<SyncRequest> req;
    std::optional<Desired> opDesired;  // a manual sync or rollback to another revision
    std::string syncError;
    const auto steadyNow = clock.now();
    std::optional<Clock::TimePoint> retryAt;
    {
        std::lock_guard lock(mu);
        retryAt = apps[key].retryAt;
    }
    auto retryPending = [&] { return retryAt && steadyNow < *retryAt; };
    // Ends the operation recorded in the status (nothing is syncing now).
    auto finishOperation = [&](const std::string& finalPhase, const std::string& message,
                               const json& operation) {
        json os = operation.is_null() ? json(fieldOr(baseline, "operationState", json::object()))
                                      : json{{"operation", operation}};
        if (!os.is_object()) os = json::object();
        os["phase"] = finalPhase;
        os["message"] = message;
        os["finishedAt"] = now;
        if (!os.contains("startedAt")) os["startedAt"] = now;
        updates["operationState"] = std::move(os);
    };
    auto continuingRetryCount = [&] {
        const json& rc = fieldOr(opState, "retryCount", kNoValue);
        return rc.is_number_integer() ? rc.get<int>() : 0;
    };
    auto continuingStartedAt = [&] {
        std::string s = detail::strAt(opState, "/startedAt"_json_pointer);
        return s.empty() ? now : s;
    };

    if (phase == "Terminating") {
        // Syncs run on this worker, so none is running now: the operation that was waiting for
        // a retry (or was cut short by a restart) ends here.
        finishOperation("Failed", "Operation terminated", json());
        {
            std::lock_guard lock(mu);
            apps[key].retryAt.reset();
        }
        event(ref, kube::EventType::Warning, "SyncFailed", "Operation terminated");
        removeOperation(ref);
        parsed.operation.reset();
    } else if (parsed.operation) {
        const app::Operation& op = *parsed.operation;
        const bool continuing = phase == "Running" &&
                                fieldOr(opState, "operation", json()) == recordedOperation(op.raw);
        if (!opErrors.empty()) {
            finishOperation("Error", join(opErrors, "; "), recordedOperation(op.raw));
            event(ref, kube::EventType::Warning, "SyncFailed", join(opErrors, "; "));
            removeOperation(ref);
        } else if (continuing && retryPending()) {
            out.requeueAfter =
                std::chrono::duration_cast<std::chrono::milliseconds>(*retryAt - steadyNow);
        } else {
            SyncRequest r;
            r.op = op;
            r.request.prune = op.prune;
            if (!op.syncOptions.empty()) {
                std::vector<std::string> ignored;
                r.request.options = app::SyncOptions::parse(op.syncOptions, ignored);
            } else {
                r.request.options = spec.syncPolicy.options;
            }
            r.request.applyOutOfSyncOnly = r.request.options.applyOutOfSyncOnly;
            r.retry = op.retry ? op.retry : spec.syncPolicy.retry;
            r.retryCount = continuing ? continuingRetryCount() : 0;
            r.startedAt = continuing ? continuingStartedAt() : now;
            std::string opError;
            std::string wanted = op.revision;
            if (spec.multiSource) wanted = join(op.revisions, ",");
            const std::string target = spec.multiSource ? "" : spec.source.targetRevision;
            if (!wanted.empty() && wanted != desired.revision.sha && wanted != target) {
                try {
                    std::vector<git::Revision> revs;
                    if (spec.multiSource) {
                        if (op.revisions.size() != spec.sources.size())
                            throw render::RenderError(
                                "operation.sync.revisions", 0,
                                "names " + std::to_string(op.revisions.size()) +
                                    " revision(s) for " + std::to_string(spec.sources.size()) +
                                    " sources");
                        for (size_t i = 0; i < spec.sources.size(); ++i)
                            revs.push_back(resolveExact(spec.sources[i], op.revisions[i]));
                    } else {
                        revs.push_back(resolveExact(spec.source, wanted));
                    }
                    std::vector<std::string> shas;
                    for (const auto& r : revs) shas.push_back(r.sha);
                    if (join(shas, ",") != desired.revision.sha) {
                        opDesired = desiredFor(ref, spec, revs, inventory);
                        if (!opDesired->prepared->errors.empty()) {
                            opError = join(opDesired->prepared->errors, "; ");
                        } else if (auto outside = app::scopeViolations(opDesired->prepared->objects,
                                                                       opts.managedScope);
                                   !outside.empty()) {
                            opError = join(outside, "; ");
                        } else if (auto caches = ensureInformers(
                                       kindsOf(opDesired->prepared->objects, inventory),
                                       kCacheWait);
                                   caches.state == cache::ScopedInformer::SyncState::Failed) {
                            opError = "cannot watch the application's resources: " + caches.error;
                        } else if (caches.state == cache::ScopedInformer::SyncState::Pending) {
                            rec.succeeded = false;
                            rec.error = "waiting for watch caches";
                            out.requeueAfter = kNotReadyRequeue;
                            return out;
                        } else {
                            compareInto(*opDesired, ref, spec);
                        }
                    }
                } catch (const git::GitError& e) {
                    opError = git::scrubUrl(e.what());
                } catch (const render::RenderError& e) {
                    opError = git::scrubUrl(e.what());
                }
            }
            if (!opError.empty()) {
                const std::string msg = "revision " + wanted + ": " + opError;
                finishOperation("Error", msg, recordedOperation(op.raw));
                event(ref, kube::EventType::Warning, "SyncFailed", msg);
                removeOperation(ref);
            } else {
                req = std::move(r);
            }
        }
    } else if (spec.syncPolicy.automated) {
        const bool prune = spec.syncPolicy.prune;
        const bool needs = needsSync(desired.compared, prune);
        const json& lastResult = fieldOr(opState, "syncResult", kEmptyObject);
        const std::string lastRevision = recordedRevision(lastResult);
        const json lastSource =
            fieldOr(lastResult, spec.multiSource ? "sources" : "source", json());
        const bool sameRevision = lastRevision == desired.revision.sha &&
                                  lastSource == (spec.multiSource ? rawSources : rawSource);
        std::size_t wouldPrune = 0;
        for (const auto& r : desired.compared.resources)
            if (!r.desired && r.requiresPruning && prune && !r.pruneDisabled) ++wouldPrune;
        auto automatedRequest = [&](bool continuing, bool selfHeal) {
            SyncRequest r;
            r.automated = true;
            r.selfHeal = selfHeal;
            r.op.automated = true;
            r.op.revision = desired.revision.sha;
            r.op.prune = prune;
            r.op.raw = {{"sync", {{"prune", prune}}}, {"initiatedBy", {{"automated", true}}}};
            if (spec.multiSource) {
                r.op.revisions = desired.revisions;
                r.op.raw["sync"]["revisions"] = desired.revisions;
            } else {
                r.op.raw["sync"]["revision"] = desired.revision.sha;
            }
            if (spec.syncPolicy.retry) {
                const auto& rp = *spec.syncPolicy.retry;
                r.op.raw["retry"] = {{"limit", rp.limit},
                                     {"backoff",
                                      {{"duration", detail::formatDuration(rp.duration)},
                                       {"factor", rp.factor},
                                       {"maxDuration", detail::formatDuration(rp.maxDuration)}}}};
            }
            r.request.prune = prune;
            r.request.options = spec.syncPolicy.options;
            r.request.applyOutOfSyncOnly = spec.syncPolicy.options.applyOutOfSyncOnly || selfHeal;
            r.retry = spec.syncPolicy.retry;
            r.retryCount = continuing ? continuingRetryCount() : 0;
            r.startedAt = continuing ? continuingStartedAt() : now;
            return r;
        };
        if (!sameRevision && phase == "Running") {
            // An operation for an earlier revision or source (cut short by a restart, or
            // waiting for a retry) never resumes once the target moved: it ends here, and
            // what the new target needs is decided below. Its objects are in the inventory
            // (written ahead), so whatever it applied is pruned if no longer wanted.
            const std::string msg =
                "Operation interrupted: the sync to " +
                (lastRevision.empty() ? std::string("an earlier revision") : lastRevision) +
                " did not finish, and the target is now " + desired.revision.sha;
            finishOperation("Failed", msg, json());
            event(ref, kube::EventType::Warning, "SyncInterrupted", msg);
            std::lock_guard lock(mu);
            apps[key].retryAt.reset();
        }
        if (sameRevision && phase == "Running") {
            // A retry (or an operation a restart interrupted) of this revision runs to its end.
            if (retryPending()) {
                out.requeueAfter =
                    std::chrono::duration_cast<std::chrono::milliseconds>(*retryAt - steadyNow);
            } else {
                req = automatedRequest(true, false);
            }
        } else if (needs && desired.prepared->objects.empty() && wouldPrune > 0 &&
                   !spec.syncPolicy.allowEmpty) {
            syncError = "auto-sync will wipe out all resources: the source renders nothing and " +
                        std::to_string(wouldPrune) +
                        " resource(s) would be pruned; set allowEmpty to allow";
        } else if (needs && sameRevision && (phase == "Failed" || phase == "Error")) {
            syncError = "Failed last sync attempt to " + desired.revision.sha + ": " +
                        detail::strAt(opState, "/message"_json_pointer) +
                        "; auto-sync will not be attempted again for this revision";
        } else if (needs && sameRevision && phase == "Succeeded") {
            if (spec.syncPolicy.selfHeal) req = automatedRequest(false, true);
        } else if (needs) {
            req = automatedRequest(false, false);
        }
    } else if (phase == "Running") {
        // Neither an operation nor automation is left to finish what was running.
        finishOperation("Failed", "Operation cancelled: no operation or automated sync policy",
                        json());
    }
    if (syncError.empty()) {
        app::removeCondition(conditions, app::kSyncError);
    } else {
        app::setCondition(conditions, app::kSyncError, syncError, now);
    }

    if (req) {
        if (req->selfHeal) {
            // Name who drifted and what, before the sync puts it back.
            std::vector<std::string> managers, lines;
            for (const auto& r : desired.compared.resources) {
                if (!r.desired || !r.live || r.state != app::SyncState::OutOfSync ||
                    !r.ownedBy.empty())
                    continue;
                auto who = app::driftManagers(*r.live, r.diff, opts.fieldManager);
                std::vector<std::string> paths;
                for (const auto& d : r.diff.differences) paths.push_back(d.path);
                for (const auto& m : who)
                    if (std::find(managers.begin(), managers.end(), m) == managers.end())
                        managers.push_back(m);
                lines.push_back(detail::describe(r.key.group, r.key.kind, r.key.ns, r.key.name) +
                                " (" + join(paths, ", ") + ")" +
                                (who.empty() ? "" : " changed by " + join(who, ", ")));
            }
            std::string msg = "self-heal: correcting drift of " + join(lines, "; ");
            if (lines.empty()) msg = "self-heal: re-creating missing resources";
            counters.driftCorrections++;
            spdlog::info("application {}: {}", key, msg);
            event(ref, kube::EventType::Normal, "DriftCorrected", msg);
        }
        Desired& target = opDesired ? *opDesired : desired;
        SyncOutcome so = runSync(ref, spec, target, *req, updates);
        rec.synced = true;
        rec.succeeded = so.phase == "Succeeded";
        if (!rec.succeeded && !so.interrupted) rec.error = so.message;
        {
            std::lock_guard lock(mu);
            if (so.retryScheduled) {
                apps[key].retryAt = clock.now() + so.retryDelay;
            } else {
                apps[key].retryAt.reset();
            }
        }
        if (so.retryScheduled) out.requeueAfter = so.retryDelay;
        if (!so.interrupted && !so.retryScheduled && parsed.operation) removeOperation(ref);
        // Compare again against what the sync left, once the caches have seen its writes.
        if (!so.interrupted) waitForCaches(so, kCacheWait);
        if (updates.contains("inventory"))
            desired.inventory = app::parseInventory(updates["inventory"]);
        if (ensureInformers(kindsOf(desired.prepared->objects, desired.inventory), kCacheWait)
                .state == cache::ScopedInformer::SyncState::Synced)
            compareInto(desired, ref, spec);
        if (so.interrupted) out.requeueAfter = kNotReadyRequeue;
    }

    // Status of the target revision.
    json revision = revisionAndSource(ref, spec, desired);
    updates["sync"] = {{"status", desired.compared.synced ? "Synced" : "OutOfSync"}};
    for (const char* k : {"revision", "revisions"})
        if (revision.contains(k)) updates["sync"][k] = revision[k];
    updates["sync"]["comparedTo"] = {{"destination", rawDestination}};
    for (const char* k : {"source", "sources"})
        if (revision.contains(k)) updates["sync"]["comparedTo"][k] = revision[k];
    if (spec.multiSource) {
        updates["sourceTypes"] = desired.sourceTypes;
        updates["sourceType"] = nullptr;
    } else {
        updates["sourceType"] = desired.sourceTypes.empty() ? json() : json(desired.sourceTypes[0]);
        updates["sourceTypes"] = nullptr;
    }
    updates["health"] = {{"status", health::toString(desired.compared.health)}};
    updates["resources"] = app::resourcesStatus(desired.compared);
    const std::string sharedWarning = join(desired.compared.sharedResourceWarnings, "; ");
    if (sharedWarning.empty()) {
        app::removeCondition(conditions, app::kSharedResourceWarning);
    } else {
        const std::string msg = sharedWarning + " (not applied by " + ref.instance + ")";
        app::setCondition(conditions, app::kSharedResourceWarning, msg, now);
        eventOnce(ref, kube::EventType::Warning, "SharedResourceWarning", msg);
    }
    withConditions();
    if (!writeStatus(ref, updates)) {
        // The user asked to terminate the operation while we were finishing it: keep what the
        // sync did (inventory, history) and record the termination.
        if (detail::strAt(*ref.status, "/operationState/phase"_json_pointer) == "Terminating") {
            json os = updates.contains("operationState")
                          ? updates["operationState"]
                          : fieldOr(*ref.status, "operationState", json::object());
            os["phase"] = "Failed";
            os["message"] = "Operation terminated";
            os["finishedAt"] = now;
            updates["operationState"] = std::move(os);
            {
                std::lock_guard lock(mu);
                apps[key].retryAt.reset();
            }
            writeStatus(ref, updates);
            removeOperation(ref);
        }
        out.requeueAfter = std::chrono::milliseconds(0);
    }

    rec.syncStatus = updates["sync"]["status"];
    rec.health = updates["health"]["status"];
    if (!syncError.empty() && rec.error.empty()) {
        rec.error = syncError;
        rec.succeeded = false;
    }
    return out;
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
