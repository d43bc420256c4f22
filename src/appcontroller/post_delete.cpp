// PostDelete hooks (Argo CD's): an Application whose source has them carries the post-delete
// finalizer; when it is deleted, once its resources are gone, its source is rendered at the
// target revision and the hooks run as in a sync (created, waited for, deleted once they
// succeeded). A hook that fails, or a source that cannot be rendered, keeps the finalizer and
// is retried: removing the finalizer by hand lets the deletion finish without them.
#include <spdlog/spdlog.h>

#include "sluice/source/repository.h"
#include "sluice/util/strings.h"
#include "sync_run.h"

namespace sluice::appcontroller {

namespace {

constexpr auto kPostDeleteRetry = std::chrono::seconds(30);

}  // namespace

ReconcileOutcome ApplicationController::Impl::runPostDeleteHooks(AppRef& ref, std::size_t index,
                                                                 const std::string& finalizer) {
    ReconcileOutcome out;
    out.record.key = ref.key;
    auto fail = [&](const std::string& why) {
        const std::string msg = "PostDelete hooks: " + why + " (finalizer " + finalizer +
                                " is kept; remove it to finish the deletion without them)";
        out.record.succeeded = false;
        out.record.error = msg;
        out.requeueAfter = kPostDeleteRetry;
        {
            std::lock_guard lock(mu);
            apps[ref.key].postDeleteRetryAt = clock.now() + kPostDeleteRetry;
        }
        store.eventOnce(ref, kube::EventType::Warning, "PostDeleteHookFailed", msg);
        return out;
    };
    const std::string deletion =
        kube::uidOf(ref.object) + "@" + ref.object["metadata"].value("deletionTimestamp", "");
    {
        std::lock_guard lock(mu);
        detail::AppState& st = apps[ref.key];
        if (st.postDeleteDoneFor == deletion) {
            removeFinalizer(ref, index, finalizer, out);
            return out;
        }
        // A failed run is retried after kPostDeleteRetry, not at every event (the hook's own
        // updates requeue the Application): its hooks are kept that long for inspection.
        if (st.postDeleteRetryAt && clock.now() < *st.postDeleteRetryAt) {
            out.record.succeeded = false;
            out.record.error = "PostDelete hooks failed; retried later";
            out.requeueAfter = std::chrono::duration_cast<std::chrono::milliseconds>(
                *st.postDeleteRetryAt - clock.now());
            return out;
        }
    }
    const appengine::ParseResult parsed = appengine::parseApplication(ref.object);
    std::string clusterError;
    std::shared_ptr<Cluster> cluster = clusters.use(ref.key, parsed.spec.destination.server,
                                                    parsed.spec.destination.name, clusterError);
    if (!cluster) return fail(clusterError);
    Desired desired;
    try {
        bool fetched = false;
        const auto revisions = sources.resolveTargets(parsed.spec, clock.now(), fetched);
        desired = sources.desiredFor(ref, parsed.spec, revisions, {}, *cluster);
    } catch (const git::GitError& e) {
        return fail(git::scrubUrl(e.what()));
    } catch (const render::RenderError& e) {
        return fail(git::scrubUrl(e.what()));
    }
    if (!desired.prepared->errors.empty()) return fail(join(desired.prepared->errors, "; "));
    appengine::CompareInput in;
    in.instance = ref.instance;
    in.desired =
        std::shared_ptr<const std::vector<json>>(desired.prepared, &desired.prepared->objects);
    desired.compared = appengine::compare(in);  // for its hooks only: nothing live is read

    SyncRequest req;
    req.op.raw = {{"sync", json::object()}};
    // Stable across restarts, so a hook with generateName keeps its name.
    req.startedAt = ref.object["metadata"].value("deletionTimestamp", "");
    json updates = json::object();
    SyncRun run(*this, ref, *cluster, parsed.spec, desired, req, updates);
    if (!run.postDelete()) {
        if (run.failure().empty()) {  // shutdown or timeout while waiting: look again soon
            out.record.succeeded = false;
            out.requeueAfter = std::chrono::seconds(1);
            return out;
        }
        return fail(run.failure());
    }
    {
        std::lock_guard lock(mu);
        apps[ref.key].postDeleteDoneFor = deletion;
    }
    removeFinalizer(ref, index, finalizer, out);
    return out;
}

}  // namespace sluice::appcontroller
