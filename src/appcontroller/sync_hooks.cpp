// Resource hooks in a sync, with Argo CD's semantics: a step's hooks are created together
// (after deleting the previous run's object under BeforeHookCreation), waited for until each
// completes (its health: a Job's success or failure, a Pod's phase, ...), and deleted as their
// policy says. A hook that fails fails the sync; SyncFail hooks then run.
#include <spdlog/spdlog.h>

#include "sluice/appengine/tracking.h"
#include "sluice/util/strings.h"
#include "sync_run.h"

namespace sluice::appcontroller {

using appengine::HookType;
using detail::kubectlName;

// One hook object of one step.
struct ApplicationController::Impl::SyncRun::HookRun {
    std::size_t index = 0;  // into compared_.hooks
    HookType phase = HookType::PreSync;
    std::size_t slot = 0;  // into hookResults_
    json object;           // as applied
    kube::GroupVersionKind gvk;
    std::string ns, name, uid;
    appengine::ResourceKey key;
    bool done = false;
    bool failed = false;
    std::string message;
};

bool ApplicationController::Impl::SyncRun::hookSteps(
    const std::vector<appengine::HookStep>& steps) {
    for (const auto& step : steps)
        if (!runHooks(step.hooks, step.phase)) return false;
    return true;
}

void ApplicationController::Impl::SyncRun::writeProgress(const std::string& message) {
    if (dryRun_ || opState_.is_null()) return;  // no operation (PostDelete hooks)
    json resources = json::array();
    {
        std::lock_guard lock(resultsMu_);
        for (const auto& r : results_)
            if (r) resources.push_back(*r);
        for (const auto& h : hookResults_) resources.push_back(h);
    }
    opState_["message"] = message;
    opState_["syncResult"]["resources"] = std::move(resources);
    if (!impl_.store.writeStatus(ref_, json{{"operationState", opState_}})) so_.terminated = true;
}

// Deletes one object (if it is still the one named by `uid`, when given) and, with `wait`,
// waits until it is gone. False when the sync must end first.
bool ApplicationController::Impl::SyncRun::deleteAndWait(const kube::GroupVersionKind& gvk,
                                                         const std::string& ns,
                                                         const std::string& name,
                                                         const std::string& uid, bool wait) {
    kube::DeleteOptions del;
    del.propagationPolicy = "Background";  // the Job goes at once, its Pods after it
    if (!uid.empty()) del.preconditionUid = uid;
    try {
        writer_->remove(gvk, ns, name, del);
    } catch (const kube::ApiError& e) {
        if (e.isNotFound() || e.code() == 409) return true;  // gone, or another object now
        throw;
    }
    while (wait) {
        try {
            client_.get(gvk, ns, name);
        } catch (const kube::ApiError& e) {
            if (e.isNotFound()) return true;
            throw;
        }
        if (interruption() || !pause()) return false;
    }
    return true;
}

void ApplicationController::Impl::SyncRun::endHook(HookRun& run, const std::string& hookPhase,
                                                   const std::string& message) {
    run.done = true;
    run.failed = hookPhase != "Succeeded";
    run.message = message;
    std::lock_guard lock(resultsMu_);
    json& slot = hookResults_[run.slot];
    slot["hookPhase"] = hookPhase;
    slot["message"] = message;
}

// A hook object as this sync creates it: named for the sync, tracked.
json ApplicationController::Impl::SyncRun::hookObject(std::size_t index, HookType phase,
                                                      std::string& name) const {
    json object = *compared_.hooks[index].desired;
    json& md = object["metadata"];
    name = appengine::hookObjectName(object, syncId_, phase);
    md["name"] = name;
    md.erase("generateName");
    md["annotations"][appengine::kTrackingAnnotation] =
        appengine::trackingIdFor(ref_.instance, object).str();
    return object;
}

// The dry run of one hook before the sync writes anything: an error message or nothing. A hook
// whose Namespace or kind this sync creates is not dry-run; nor is one whose previous run's
// object is still there under BeforeHookCreation: it is deleted and created anew, a create
// that cannot be dry-run while the old object exists (and an apply over it would be refused
// for what a Job's or Pod's spec may not change).
std::optional<std::string> ApplicationController::Impl::SyncRun::dryRunHook(std::size_t index,
                                                                            HookType phase) {
    const appengine::HookResource& h = compared_.hooks[index];
    const auto gvk = detail::gvkOf(h.key.group, h.version, h.key.kind);
    std::string name;
    const json object = hookObject(index, phase, name);
    const std::string ns = object["metadata"].value("namespace", "");
    if (dependsOnBootstrap(ns, gvk.apiVersion(), h.key.kind)) return std::nullopt;
    try {
        if (h.info.deleteBeforeCreation) {
            try {
                client_.get(gvk, ns, name);
                return std::nullopt;
            } catch (const kube::ApiError& e) {
                if (!e.isNotFound()) throw;
            }
        }
        kube::ApplyOptions ao;
        ao.fieldManager = impl_.opts.fieldManager;
        ao.force = true;
        ao.dryRun = true;
        writer_->apply(object, ao);
        return std::nullopt;
    } catch (const kube::ApiError& e) {
        return e.message();
    } catch (const std::exception& e) {
        return std::string(e.what());
    }
}

// A run resumed after a restart (same operation, same start) keeps the hooks the interrupted run
// left Running in its results until it reaches them again: a termination or shutdown before
// then must still find them in the status, and stop them (ReconcilePass::stopRunningHooks).
void ApplicationController::Impl::SyncRun::inheritRunningHooks() {
    const json& status = *ref_.status;
    if (!status.contains("operationState") || !status["operationState"].is_object()) return;
    const json& previous = status["operationState"];
    if (previous.value("startedAt", "") != req_.startedAt || !previous.contains("syncResult") ||
        !previous["syncResult"].is_object())
        return;
    const json resources =
        appengine::unpackedField(previous["syncResult"].value("resources", json()));
    if (!resources.is_array()) return;
    std::lock_guard lock(resultsMu_);
    for (const json& r : resources)
        if (r.is_object() && r.value("hookPhase", "") == "Running") hookResults_.push_back(r);
}

// Creates one hook object: named for this sync, tracked, the previous one deleted first when
// its policy says so. False when the sync must end (the hook's own failure is in `run`).
bool ApplicationController::Impl::SyncRun::startHook(HookRun& run) {
    const appengine::HookResource& h = compared_.hooks[run.index];
    run.object = hookObject(run.index, run.phase, run.name);
    run.ns = run.object["metadata"].value("namespace", "");
    run.gvk = detail::gvkOf(h.key.group, h.version, h.key.kind);
    run.key = h.key;
    run.key.name = run.name;
    {
        std::lock_guard lock(resultsMu_);
        // The same hook inherited from the run this one resumes: its entry is taken over.
        run.slot = hookResults_.size();
        for (std::size_t i = 0; i < hookResults_.size(); ++i)
            if (hookResults_[i].value("kind", "") == h.key.kind &&
                hookResults_[i].value("namespace", "") == run.ns &&
                hookResults_[i].value("name", "") == run.name)
                run.slot = i;
        if (run.slot == hookResults_.size()) hookResults_.emplace_back();
        hookResults_[run.slot] = json{{"group", h.key.group},
                                      {"version", h.version},
                                      {"kind", h.key.kind},
                                      {"namespace", run.ns},
                                      {"name", run.name},
                                      {"status", "Synced"},
                                      {"hookType", appengine::toString(run.phase)},
                                      {"hookPhase", "Running"},
                                      {"syncPhase", appengine::toString(run.phase)},
                                      {"message", ""}};
    }
    try {
        if (h.info.deleteBeforeCreation && !dryRun_ &&
            !deleteAndWait(run.gvk, run.ns, run.name, "", true))
            return false;
        kube::ApplyOptions ao;
        ao.fieldManager = impl_.opts.fieldManager;
        ao.force = true;
        ao.dryRun = dryRun_;
        const json response = writer_->apply(run.object, ao);
        run.uid = kube::uidOf(response);
        if (dryRun_) endHook(run, "Succeeded", kubectlName(run.key) + " created (dry run)");
    } catch (const std::exception& e) {
        endHook(run, "Failed", e.what());
    }
    return true;
}

// Polls the step's hooks until each has completed. False when the sync must end first.
bool ApplicationController::Impl::SyncRun::waitHooks(std::vector<HookRun>& runs) {
    for (;;) {
        bool pending = false;
        for (auto& run : runs) {
            if (run.done) continue;
            std::optional<json> live;
            try {
                live = client_.get(run.gvk, run.ns, run.name);
            } catch (const kube::ApiError& e) {
                if (!e.isNotFound()) throw;
            }
            if (!live || kube::uidOf(*live) != run.uid) {
                endHook(run, "Failed", kubectlName(run.key) + " was deleted before it completed");
                continue;
            }
            const health::Assessment h = health::assess(*live);
            if (h.status == health::Status::Healthy) {
                endHook(run, "Succeeded", h.message.empty() ? "completed" : h.message);
            } else if (h.status == health::Status::Degraded) {
                endHook(run, "Failed", h.message.empty() ? "failed" : h.message);
            } else {
                pending = true;
            }
        }
        if (!pending) return true;
        if (interruption() || !pause()) {
            if (stop_.stopRequested()) so_.interrupted = true;
            if (so_.terminated) stopHooks(runs);
            return false;
        }
    }
}

// A terminated sync stops its running hooks, as Argo CD does.
void ApplicationController::Impl::SyncRun::stopHooks(std::vector<HookRun>& runs) {
    for (auto& run : runs)
        if (!run.done && !run.uid.empty()) {
            deleteAndWait(run.gvk, run.ns, run.name, run.uid, false);
            endHook(run, "Failed", "Operation terminated");
        }
}

// Runs the hooks of one phase and wave. False when one failed or the sync must end.
bool ApplicationController::Impl::SyncRun::runHooks(const std::vector<std::size_t>& indices,
                                                    HookType phase) {
    if (indices.empty()) return true;
    if (interruption()) return false;
    std::vector<HookRun> runs(indices.size());
    std::vector<std::string> names;
    for (std::size_t n = 0; n < indices.size(); ++n) {
        runs[n].index = indices[n];
        runs[n].phase = phase;
        if (!startHook(runs[n])) return false;
        names.push_back(kubectlName(runs[n].key));
    }
    writeProgress("waiting for completion of " + std::string(appengine::toString(phase)) + " hook" +
                  (names.size() > 1 ? "s " : " ") + join(names, ", "));
    if (so_.terminated) {  // found by the progress write
        stopHooks(runs);
        return false;
    }
    if (!waitHooks(runs)) return false;
    std::vector<std::string> failed;
    for (auto& run : runs) {
        const appengine::HookInfo& info = compared_.hooks[run.index].info;
        if (run.failed) failed.push_back(kubectlName(run.key) + ": " + run.message);
        if (dryRun_ || run.uid.empty()) continue;
        // Nothing creates a PostDelete hook again: it goes once it has succeeded.
        if (run.failed ? info.deleteOnFailure
                       : info.deleteOnSuccess || phase == HookType::PostDelete) {
            try {
                deleteAndWait(run.gvk, run.ns, run.name, run.uid, false);
            } catch (const std::exception& e) {
                spdlog::warn("application {}: deleting hook {}: {}", ref_.key, kubectlName(run.key),
                             e.what());
            }
        }
        impl_.store.event(ref_, run.failed ? kube::EventType::Warning : kube::EventType::Normal,
                          run.failed ? "HookFailed" : "HookSucceeded",
                          std::string(appengine::toString(phase)) + " hook " +
                              kubectlName(run.key) + (run.failed ? " failed: " : " succeeded: ") +
                              run.message);
    }
    if (failed.empty()) return true;
    failure_ = std::string(appengine::toString(phase)) + " hook failed: " + join(failed, "; ");
    if (failedHookPhase_.empty()) failedHookPhase_ = appengine::toString(phase);
    return false;
}

// A sync that failed runs its SyncFail hooks; their own failure is added to the message.
void ApplicationController::Impl::SyncRun::syncFailHooks() {
    if (plan_.syncFail.empty() || so_.terminated || so_.interrupted || dryRun_) return;
    const std::string failure = failure_;
    const std::string failedPhase = failedHookPhase_;
    const bool terminal = terminal_;
    failure_.clear();
    // Within what is left of the sync timeout: after a timeout they do not run.
    const bool ok = hookSteps(plan_.syncFail);
    failure_ = ok || failure_.empty() ? failure : failure + "; " + failure_;
    failedHookPhase_ = failedPhase;
    terminal_ = terminal;
}

}  // namespace sluice::appcontroller
