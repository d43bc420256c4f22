// One sync operation: bootstrap (Namespaces, CRDs), dry run, waves of server-side applies with
// prunes and health gates, PruneLast, retries, timeout and termination.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>

#include "sluice/util/strings.h"
#include "sync_outcome.h"
#include "sync_run.h"
#include "util.h"

namespace sluice::appcontroller {

using detail::describeKey;
using detail::kubectlName;

namespace {

std::string propagationPolicy(const std::string& option) {
    if (option == "background") return "Background";
    if (option == "orphan") return "Orphan";
    return "Foreground";
}

bool isImmutableError(const std::string& message) {
    return message.find("field is immutable") != std::string::npos;
}

bool bootstrapReady(const json& obj) {
    const std::string kind = obj.value("kind", "");
    if (kind == "Namespace") return detail::strAt(obj, "/status/phase"_json_pointer) == "Active";
    if (kind == "CustomResourceDefinition") {
        if (!obj.contains("status") || !obj["status"].contains("conditions")) return false;
        for (const auto& c : obj["status"]["conditions"])
            if (c.value("type", "") == "Established" && c.value("status", "") == "True")
                return true;
        return false;
    }
    return true;
}

}  // namespace

void ApplicationController::Impl::SyncRun::setResult(std::size_t i, const std::string& state,
                                                     const std::string& message) {
    const auto& r = compared_.resources[i];
    json item = {{"group", r.key.group},  {"version", r.version}, {"kind", r.key.kind},
                 {"namespace", r.key.ns}, {"name", r.key.name},   {"status", state},
                 {"message", message},    {"syncPhase", "Sync"}};
    std::lock_guard lock(resultsMu_);
    results_[i] = std::move(item);
}

// The operation is visible as Running before anything is written to the cluster.
bool ApplicationController::Impl::SyncRun::begin() {
    opState_ = {
        {"operation", recordedOperation(req_.op.raw)},
        {"phase", "Running"},
        {"message", req_.retryCount > 0 ? "retrying attempt #" + std::to_string(req_.retryCount)
                                        : std::string("syncing")},
        {"startedAt", req_.startedAt},
        {"retryCount", req_.retryCount},
        {"syncResult", revisionRecord_}};
    opState_["syncResult"]["resources"] = json::array();
    inheritRunningHooks();
    if (!hookResults_.empty()) opState_["syncResult"]["resources"] = hookResults_;
    updates_["operationState"] = opState_;
    if (!impl_.store.writeStatus(ref_, updates_)) {
        so_.terminated = true;
        return false;
    }
    impl_.store.event(
        ref_, kube::EventType::Normal, "SyncStarted",
        std::string(dryRun_ ? "dry-run " : "") + "sync to " + sha_ + " started" +
            (req_.automated ? " (automated)" : "") +
            (req_.retryCount > 0 ? ", attempt #" + std::to_string(req_.retryCount + 1) : ""));
    return true;
}

// With a project's destinationServiceAccounts every write goes as the service account it names
// for the destination (Argo CD's sync with impersonation); no matching item fails the sync
// before anything is written.
bool ApplicationController::Impl::SyncRun::impersonate() {
    const appengine::ImpersonationResult& imp = req_.impersonation;
    if (!imp.error.empty()) {
        failure_ = "failed to find a matching service account to impersonate: " + imp.error;
        terminal_ = noIdentity_ = true;
        return false;
    }
    if (imp.user.empty()) return true;
    try {
        writer_ = &cluster_.impersonating(imp.user);
    } catch (const std::exception& e) {
        failure_ = "cannot impersonate " + imp.user + ": " + e.what();
        terminal_ = noIdentity_ = true;
        return false;
    }
    spdlog::info("application {}: sync writes impersonate {}", ref_.key, imp.user);
    return true;
}

// Why the sync must end now, checked between steps: shutdown, timeout, termination.
bool ApplicationController::Impl::SyncRun::interruption() {
    if (so_.terminated) return true;
    if (stop_.stopRequested()) {
        so_.interrupted = true;
        return true;
    }
    if (impl_.clock.now() >= deadline_) {
        failure_ = "sync timed out after " + detail::formatDuration(impl_.opts.syncTimeout);
        terminal_ = true;
        return true;
    }
    if (impl_.store.operationPhase(ref_) == "Terminating") {
        so_.terminated = true;
        return true;
    }
    return false;
}

// Write-ahead: before objects are applied, the inventory in the status already names them, so
// a sync cut short at any point (even by SIGKILL) leaves nothing with our tracking id that a
// later prune could miss. One status write per step that adds to the inventory.
bool ApplicationController::Impl::SyncRun::recordIntent(const std::vector<std::size_t>& indices) {
    if (dryRun_) return true;
    bool grew = false;
    for (std::size_t i : indices)
        if (recordedKeys_.insert(compared_.resources[i].key).second) {
            recorded_.push_back(detail::inventoryEntryOf(compared_.resources[i]));
            grew = true;
        }
    if (!grew) return true;
    json inventory = {{"inventory", appengine::inventoryStatus(recorded_)}};
    if (impl_.store.writeStatus(ref_, inventory)) return true;
    so_.terminated = true;  // the user terminated the operation meanwhile
    return false;
}

// Replace=true and an immutable field changed: the object is deleted, its deletion waited
// for, and applied again. An error message, or nothing with `response` set.
std::optional<std::string> ApplicationController::Impl::SyncRun::recreate(
    std::size_t i, const json& payload, const kube::ApplyOptions& ao, json& response) {
    const auto& r = compared_.resources[i];
    const auto gvk = gvkAt(i);
    kube::DeleteOptions del;
    del.propagationPolicy = "Foreground";
    try {
        writer_->remove(gvk, r.key.ns, r.key.name, del);
    } catch (const kube::ApiError& de) {
        if (!de.isNotFound()) throw;
    }
    for (;;) {
        try {
            client_.get(gvk, r.key.ns, r.key.name);
        } catch (const kube::ApiError& ge) {
            if (ge.isNotFound()) break;
            throw;
        }
        if (impl_.clock.now() >= deadline_)
            return std::string("timed out waiting for the old object to be deleted");
        if (!pause()) return std::string("interrupted by controller shutdown");
    }
    json fresh = payload;
    response = writer_->apply(fresh, ao);
    return std::nullopt;
}

// Server-side apply of one object (a dry run when validating): an error message or nothing.
std::optional<std::string> ApplicationController::Impl::SyncRun::applyOne(std::size_t i,
                                                                          bool validateOnly) {
    const auto& r = compared_.resources[i];
    // A Canary's target: its replicas are the Canary controller's, never re-applied.
    const json payload = appengine::controlledPayload(
        appengine::applyPayload(*r.desired, r.live, spec_.ignoreDifferences,
                                options_.respectIgnoreDifferences),
        r.live, r.controlled, impl_.opts.fieldManager);
    kube::ApplyOptions ao;
    ao.fieldManager = impl_.opts.fieldManager;
    ao.force = true;  // as Argo CD: git wins over other managers of the same fields
    ao.dryRun = validateOnly || dryRun_;
    std::string verb = "serverside-applied";
    try {
        json response;
        try {
            response = writer_->apply(payload, ao);
        } catch (const kube::ApiError& e) {
            const bool immutable = e.isInvalid() && isImmutableError(e.message());
            if (validateOnly || ao.dryRun || !immutable ||
                !(options_.replace || r.objectOptions.replace))
                throw;
            if (auto error = recreate(i, payload, ao, response)) return error;
            verb = "replaced";
        }
        if (validateOnly) return std::nullopt;
        {
            const std::string rv = kube::resourceVersionOf(response);
            std::lock_guard lock(resultsMu_);
            applied_[i] = true;
            if (!ao.dryRun) {
                appliedVersion_[i] = rv;
                so_.written.push_back({gvkAt(i), r.key.ns, r.key.name, rv});
            }
        }
        setResult(i, "Synced", kubectlName(r.key) + " " + verb + (ao.dryRun ? " (dry run)" : ""));
        return std::nullopt;
    } catch (const kube::ApiError& e) {
        return e.message();
    } catch (const std::exception& e) {
        return std::string(e.what());
    }
}

bool ApplicationController::Impl::SyncRun::applyAll(const std::vector<std::size_t>& indices) {
    std::vector<std::optional<std::string>> errors(indices.size());
    detail::parallelFor(indices.size(), impl_.opts.applyConcurrency,
                        [&](std::size_t n) { errors[n] = applyOne(indices[n], false); });
    std::vector<std::string> failed;
    for (std::size_t n = 0; n < indices.size(); ++n) {
        if (!errors[n]) continue;
        setResult(indices[n], "SyncFailed", *errors[n]);
        failed.push_back(describeKey(compared_.resources[indices[n]].key) + ": " + *errors[n]);
    }
    if (failed.empty()) return true;
    failure_ = "one or more objects failed to apply: " + join(failed, "; ");
    return false;
}

// Deletes one object if it is still ours (never a re-created namesake): an error or nothing.
std::optional<std::string> ApplicationController::Impl::SyncRun::pruneOne(std::size_t i) {
    const auto& r = compared_.resources[i];
    const auto gvk = gvkAt(i);
    auto live = live_.liveObject(gvk, r.key.ns, r.key.name);
    if (!live) {
        setResult(i, "Pruned", "already deleted");
        return std::nullopt;
    }
    if (!appengine::isTrackedBy(*live, ref_.instance)) {
        setResult(i, "PruneSkipped", "no longer tracked by " + ref_.instance);
        return std::nullopt;
    }
    if (dryRun_) {
        setResult(i, "Pruned", "pruned (dry run)");
        return std::nullopt;
    }
    kube::DeleteOptions del{propagationPolicy(options_.prunePropagationPolicy), std::nullopt, "",
                            "", false};
    del.preconditionUid = kube::uidOf(*live);
    try {
        writer_->remove(gvk, r.key.ns, r.key.name, del);
    } catch (const kube::ApiError& e) {
        if (!e.isNotFound()) {
            setResult(i, "SyncFailed", "prune failed: " + e.message());
            return e.message();
        }
    } catch (const std::exception& e) {
        setResult(i, "SyncFailed", std::string("prune failed: ") + e.what());
        return std::string(e.what());
    }
    {
        std::lock_guard lock(resultsMu_);
        pruned_[i] = true;
        so_.pruned++;
    }
    setResult(i, "Pruned", "pruned");
    const std::string what = "pruned " + describeKey(r.key);
    spdlog::info("application {}: {}", ref_.key, what);
    impl_.store.event(ref_, kube::EventType::Normal, "Pruned", what);
    return std::nullopt;
}

bool ApplicationController::Impl::SyncRun::pruneAll(const std::vector<std::size_t>& indices) {
    std::vector<std::optional<std::string>> errors(indices.size());
    detail::parallelFor(indices.size(), impl_.opts.applyConcurrency,
                        [&](std::size_t n) { errors[n] = pruneOne(indices[n]); });
    std::vector<std::string> failed;
    for (std::size_t n = 0; n < indices.size(); ++n)
        if (errors[n])
            failed.push_back(describeKey(compared_.resources[indices[n]].key) + ": " + *errors[n]);
    if (failed.empty()) return true;
    failure_ = "one or more objects failed to prune: " + join(failed, "; ");
    return false;
}

// Waits until every applied object of a step is Healthy (or Suspended) in the cache, as of our
// write at least. False: failed (Degraded), timed out, terminated or interrupted.
bool ApplicationController::Impl::SyncRun::waitHealthy(const std::vector<std::size_t>& indices) {
    for (;;) {
        if (interruption()) return false;
        bool ready = true;
        for (std::size_t i : indices) {
            if (!applied_[i]) continue;
            const auto& r = compared_.resources[i];
            const auto gvk = gvkAt(i);
            std::shared_ptr<const json> live = live_.liveObject(gvk, r.key.ns, r.key.name);
            if (cache::ScopedInformer* cached = live_.informerFor(gvk);
                !cached || !cached->covers(r.key.ns)) {
                try {
                    live = std::make_shared<const json>(client_.get(gvk, r.key.ns, r.key.name));
                } catch (const kube::ApiError& e) {
                    if (!e.isNotFound()) throw;
                }
            }
            if (!live || !runtime::resourceVersionReached(kube::resourceVersionOf(*live),
                                                          appliedVersion_[i])) {
                ready = false;
                continue;
            }
            health::Assessment h = health::assess(*live);
            if (h.status == health::Status::Degraded) {
                failure_ = describeKey(r.key) + " is Degraded" +
                           (h.message.empty() ? "" : ": " + h.message);
                return false;
            }
            if (h.status != health::Status::Healthy && h.status != health::Status::Suspended)
                ready = false;
        }
        if (ready) return true;
        if (!pause()) {
            so_.interrupted = true;
            return false;
        }
    }
}

// CreateNamespace=true: the destination namespace, neither tracked nor in the inventory.
bool ApplicationController::Impl::SyncRun::createNamespace() {
    const std::string& ns = spec_.destination.namespace_;
    if (!options_.createNamespace || ns.empty() || dryRun_) return true;
    try {
        client_.get(kube::GroupVersionKind{"", "v1", "Namespace"}, "", ns);
        return true;
    } catch (const kube::ApiError& e) {
        if (!e.isNotFound()) throw;
    }
    try {
        writer_->create(
            {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
        spdlog::info("application {}: created namespace {}", ref_.key, ns);
    } catch (const kube::ApiError& ce) {
        if (!ce.isAlreadyExists()) {
            failure_ = "creating namespace " + ns + ": " + ce.message();
            return false;
        }
    }
    return true;
}

// The bootstrap objects are ready (Namespaces Active, CRDs Established); false when the sync
// must end first.
bool ApplicationController::Impl::SyncRun::waitBootstrapReady() {
    for (;;) {
        bool ready = true;
        for (std::size_t i : plan_.bootstrap) {
            const auto& r = compared_.resources[i];
            try {
                if (!bootstrapReady(client_.get(gvkAt(i), r.key.ns, r.key.name))) ready = false;
            } catch (const kube::ApiError& e) {
                if (!e.isNotFound()) throw;
                ready = false;
            }
        }
        if (ready) return true;
        if (interruption() || !pause()) {
            if (stop_.stopRequested()) so_.interrupted = true;
            return false;
        }
    }
}

// Namespaces and CRDs first, and waited for, so what lives in them can be dry-run.
bool ApplicationController::Impl::SyncRun::bootstrap() {
    if (plan_.bootstrap.empty()) return true;
    if (!recordIntent(plan_.bootstrap) || !applyAll(plan_.bootstrap)) return false;
    if (!dryRun_ && !waitBootstrapReady()) return false;
    bool crds = false;
    for (std::size_t i : plan_.bootstrap)
        crds |= compared_.resources[i].key.kind == "CustomResourceDefinition";
    if (crds) {
        // Kinds these CRDs define are served now: watch them before waiting on their health.
        live_.forgetUnknownKinds();
        std::set<kube::GroupVersionKind> kinds;
        for (const auto& step : plan_.waves)
            for (std::size_t i : step.apply) kinds.insert(gvkAt(i));
        live_.ensureInformers(kinds, std::chrono::seconds(10));
    }
    return true;
}

// Whether an object's dry run needs what this sync's bootstrap creates: a Namespace not yet in
// the cluster, or a kind the API server does not serve yet (a CRD of this sync).
bool ApplicationController::Impl::SyncRun::dependsOnBootstrap(const std::string& ns,
                                                              const std::string& apiVersion,
                                                              const std::string& kind) {
    if (plan_.bootstrap.empty()) return false;
    bool crds = false;
    for (std::size_t b : plan_.bootstrap) {
        const auto& r = compared_.resources[b];
        if (r.key.kind == "Namespace" && r.key.name == ns && !r.live) return true;
        crds |= r.key.kind == "CustomResourceDefinition";
    }
    return crds && !live_.scopeLookup()(apiVersion, kind);
}

// Validate: every object (and hook) is dry-run first; one rejection and nothing is applied,
// no hook runs. The early call runs before the PreSync hooks; what needs the bootstrap objects
// is dry-run by the second call, once they exist.
bool ApplicationController::Impl::SyncRun::validate(bool early) {
    if (!options_.validate) return true;
    std::vector<std::size_t> check;
    if (early) {
        auto scope = live_.scopeLookup();
        for (const auto& step : plan_.waves)
            for (std::size_t i : step.apply) {
                const auto& r = compared_.resources[i];
                if (r.objectOptions.validateDisabled) continue;
                const std::string apiVersion = gvkAt(i).apiVersion();
                if (dependsOnBootstrap(r.key.ns, apiVersion, r.key.kind)) {
                    deferredChecks_.push_back(i);
                    continue;
                }
                if (r.objectOptions.skipDryRunOnMissingResource && !scope(apiVersion, r.key.kind))
                    continue;
                check.push_back(i);
            }
    } else {
        auto scope = live_.scopeLookup();
        for (std::size_t i : deferredChecks_) {
            const auto& r = compared_.resources[i];
            if (r.objectOptions.skipDryRunOnMissingResource &&
                !scope(gvkAt(i).apiVersion(), r.key.kind))
                continue;
            check.push_back(i);
        }
    }
    std::vector<std::optional<std::string>> errors(check.size());
    detail::parallelFor(check.size(), impl_.opts.applyConcurrency,
                        [&](std::size_t n) { errors[n] = applyOne(check[n], true); });
    std::vector<std::string> rejected;
    for (std::size_t n = 0; n < check.size(); ++n) {
        if (!errors[n]) continue;
        // An immutable field is what Replace=true is for: the object is re-created.
        if (isImmutableError(*errors[n]) &&
            (options_.replace || compared_.resources[check[n]].objectOptions.replace))
            continue;
        setResult(check[n], "SyncFailed", *errors[n]);
        rejected.push_back(describeKey(compared_.resources[check[n]].key) + ": " + *errors[n]);
    }
    // The hooks of the sync, as Argo CD dry-runs them too (not SyncFail ones: they run only
    // when the sync failed).
    if (early && !dryRun_) {
        std::vector<std::pair<std::size_t, appengine::HookType>> hooks;
        for (const auto& step : plan_.preSync)
            for (std::size_t h : step.hooks) hooks.emplace_back(h, step.phase);
        for (const auto& step : plan_.waves)
            for (std::size_t h : step.hooks) hooks.emplace_back(h, appengine::HookType::Sync);
        for (const auto& step : plan_.postSync)
            for (std::size_t h : step.hooks) hooks.emplace_back(h, step.phase);
        for (const auto& [h, phase] : hooks)
            if (auto error = dryRunHook(h, phase)) {
                appengine::ResourceKey key = compared_.hooks[h].key;
                hookObject(h, phase, key.name);
                rejected.push_back(std::string(appengine::toString(phase)) + " hook " +
                                   describeKey(key) + ": " + *error);
            }
    }
    if (rejected.empty()) return true;
    failure_ = "one or more objects failed validation (dry run), nothing was applied: " +
               join(rejected, "; ");
    return false;
}

// Each wave is applied and pruned, then waited for (healthy) when anything comes after it.
bool ApplicationController::Impl::SyncRun::waves() {
    for (std::size_t w = 0; w < plan_.waves.size(); ++w) {
        const appengine::SyncStep& step = plan_.waves[w];
        if (w > 0 && interruption()) return false;
        if (!recordIntent(step.apply) || !applyAll(step.apply) || !pruneAll(step.prune))
            return false;
        if (!runHooks(step.hooks, appengine::HookType::Sync)) return false;
        // PostSync hooks run once everything is Healthy.
        const bool later =
            w + 1 < plan_.waves.size() || !plan_.pruneLast.empty() || !plan_.postSync.empty();
        if (later && !dryRun_ && !waitHealthy(step.apply)) return false;
    }
    return plan_.pruneLast.empty() || pruneAll(plan_.pruneLast);
}

// Resources not touched: owned by another Application, or prune not allowed.
void ApplicationController::Impl::SyncRun::reportSkipped(bool& ok) {
    for (std::size_t i : plan_.skipped) {
        const auto& r = compared_.resources[i];
        if (!r.ownedBy.empty()) {
            setResult(i, "SyncFailed",
                      describeKey(r.key) + " is part of applications " + r.ownedBy + " and " +
                          ref_.instance);
            if (failure_.empty())
                failure_ = "one or more resources are tracked by another application: " +
                           describeKey(r.key) + " (" + r.ownedBy + ")";
            ok = false;
        } else if (r.requiresPruning) {
            setResult(i, "PruneSkipped",
                      r.pruneDisabled ? "ignored (Prune=false)" : "ignored (requires pruning)");
        }
    }
}

// The outcome, in the operation state, inventory, history, Events and the log.
SyncOutcome ApplicationController::Impl::SyncRun::finish(bool ok) {
    const std::string finishedAt = formatRfc3339(impl_.clock.wallNow());
    const detail::SyncVerdict verdict =
        detail::judgeSync({so_.terminated, so_.interrupted, ok, failure_, terminal_, dryRun_,
                           req_.retry, req_.retryCount});
    so_.phase = verdict.phase;
    so_.message = verdict.message;
    so_.retryScheduled = verdict.retryScheduled;
    so_.retryCount = verdict.retryCount;
    so_.retryDelay = verdict.retryDelay;

    json resources = json::array();
    for (const auto& r : results_)
        if (r) resources.push_back(*r);
    {
        std::lock_guard lock(resultsMu_);
        for (const auto& h : hookResults_) resources.push_back(h);
    }
    so_.failedHookPhase = failedHookPhase_;
    opState_["phase"] = so_.phase;
    opState_["message"] = so_.message;
    opState_["retryCount"] = so_.retryCount;
    if (so_.phase != "Running") opState_["finishedAt"] = finishedAt;
    opState_["syncResult"]["resources"] = resources;
    updates_["operationState"] = opState_;

    if (!dryRun_) {
        updates_["inventory"] = appengine::inventoryStatus(detail::inventoryAfterSync(
            compared_, recorded_, applied_, pruned_, so_.phase == "Succeeded"));
        if (so_.phase == "Succeeded") {
            json history = ref_.status->contains("history")
                               ? appengine::unpackedField((*ref_.status)["history"])
                               : json::array();
            appengine::appendHistory(history, revisionRecord_, req_.startedAt, finishedAt,
                                     spec_.revisionHistoryLimit);
            updates_["history"] = std::move(history);
        }
    }

    impl_.counters.prunes += so_.pruned;
    if (so_.phase == "Succeeded") {
        impl_.store.event(ref_, kube::EventType::Normal, "SyncSucceeded",
                          "sync to " + sha_ + " succeeded: " + so_.message);
    } else if (!so_.interrupted) {
        if (!so_.retryScheduled) impl_.counters.syncFailures++;
        impl_.store.event(ref_, kube::EventType::Warning, "SyncFailed",
                          "sync to " + sha_ + ": " + so_.message);
    }
    spdlog::info("application {}: sync to {} {}: {} ({} applied, {} pruned)", ref_.key, sha_,
                 so_.phase, so_.message, std::count(applied_.begin(), applied_.end(), true),
                 so_.pruned);
    return so_;
}

SyncOutcome ApplicationController::Impl::runSync(AppRef& ref, Cluster& cluster,
                                                 const appengine::ApplicationSpec& spec,
                                                 Desired& desired, const SyncRequest& req,
                                                 json& updates) {
    return SyncRun(*this, ref, cluster, spec, desired, req, updates).run();
}

}  // namespace sluice::appcontroller
