// One reconcile of an Application, phase by phase: load -> check the spec -> resolve and
// render the source -> compare -> decide (operation, automated policy) -> sync -> status.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "decide.h"
#include "impl.h"
#include "sluice/appengine/orphans.h"
#include "sluice/source/repository.h"
#include "sluice/source/service.h"
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

// The member `name` of obj, or fallback (which must outlive the returned reference).
const json& fieldOr(const json& obj, const char* name, const json& fallback) {
    if (!obj.is_object()) return fallback;
    auto it = obj.find(name);
    return it == obj.end() ? fallback : *it;
}

int64_t generationOf(const json& obj) {
    const json* g = nullptr;
    if (obj.contains("metadata") && obj["metadata"].contains("generation"))
        g = &obj["metadata"]["generation"];
    return g && g->is_number_integer() ? g->get<int64_t>() : 0;
}

// The refresh annotations (Sluice's and Argo CD's) present on the Application.
std::vector<std::string> refreshAnnotationsOf(const json& object) {
    std::vector<std::string> out;
    const json& metadata = object["metadata"];
    if (!metadata.contains("annotations") || !metadata["annotations"].is_object()) return out;
    for (const char* a : {appengine::kRefreshAnnotation, appengine::kArgoRefreshAnnotation})
        if (metadata["annotations"].contains(a)) out.push_back(a);
    return out;
}

// A comparison problem that is no exception: errors in the manifests, objects outside the
// managed scope, or kinds and namespaces the project does not permit (found before anything
// is applied or pruned); "" when there is none.
std::string preparedProblems(const Desired& d, const appengine::ManagedScope& scope,
                             const appengine::Project& project,
                             const appengine::AppDestination& destination) {
    if (!d.prepared->errors.empty()) return join(d.prepared->errors, "; ");
    auto problems = appengine::scopeViolations(d.prepared->objects, scope);
    for (auto& v : appengine::resourceViolations(project, d.prepared->objects, destination))
        problems.push_back(std::move(v));
    return join(problems, "; ");
}

}  // namespace

class ApplicationController::Impl::ReconcilePass {
  public:
    ReconcilePass(Impl& impl, const std::string& ns, const std::string& name)
        : impl_(impl),
          key_(ns + "/" + name),
          ref_{ns, name,   key_, appengine::instanceName(ns, name, impl.opts.controlNamespace),
               {}, nullptr},
          now_(formatRfc3339(impl.clock.wallNow())) {
        out_.record.key = key_;
    }

    ReconcileOutcome run();

  private:
    bool checkSpec();
    std::vector<std::string> projectViolations() const;
    bool syncWindowAllows();
    // The destination with both the cluster's URL and name, as Argo CD checks projects.
    appengine::AppDestination appDestination() const {
        const appengine::Destination& d = parsed_.spec.destination;
        if (!cluster_) return appengine::resolveDestination(d.server, d.name, d.namespace_);
        const appengine::ClusterEntry& c = cluster_->entry();
        return appengine::AppDestination{c.server, c.name, d.namespace_, c.project};
    }
    bool resolveCluster(std::vector<std::string>& specErrors);
    std::string unreachable(const std::string& why) const {
        const appengine::ClusterEntry& c = cluster_->entry();
        return "cluster " + c.name + " (" + c.server + ") is unreachable: " + why;
    }
    bool resolveAndRender();
    Clock::TimePoint freshAfter(bool explicitRefresh);
    ReconcileOutcome comparisonFailed(const std::string& error);
    bool decide();
    bool decideOperation();
    bool resolveOperationTarget(const appengine::Operation& op, std::string& wanted,
                                std::string& error);
    void decideAutomated();
    SyncRequest automatedRequest(bool continuing, bool selfHeal) const;
    void sync();
    void rollBackIfSmokeTestFailed(const SyncOutcome& so, const Desired& target);
    void ensurePostDeleteFinalizer();
    std::vector<appengine::InventoryEntry> recordedInventory();
    json resourcesField();
    void checkOrphans();
    void writeTargetStatus();
    void finishOperation(const std::string& phase, const std::string& message,
                         const json& operation);
    void stopRunningHooks(json& os);

    json currentSync(const std::string& status) const {
        json sync = fieldOr(baseline(), "sync", json::object());
        if (!sync.is_object()) sync = json::object();
        sync["status"] = status;
        return sync;
    }
    void withConditions() { updates_["conditions"] = conditions_.empty() ? json() : conditions_; }
    const json& baseline() const { return *baselineHold_; }
    const json& opState() const { return fieldOr(baseline(), "operationState", kEmptyObject); }
    int continuingRetryCount() const {
        const json& rc = fieldOr(opState(), "retryCount", kNoValue);
        return rc.is_number_integer() ? rc.get<int>() : 0;
    }
    std::string continuingStartedAt() const {
        std::string s = detail::strAt(opState(), "/startedAt"_json_pointer);
        return s.empty() ? now_ : s;
    }
    bool retryPending() const { return retryAt_ && steadyNow_ < *retryAt_; }
    void setRetryAt(std::optional<Clock::TimePoint> at) {
        std::lock_guard lock(impl_.mu);
        impl_.apps[key_].retryAt = at;
    }
    // Compares d with the live state, with the Application's last compare as memo.
    void compare(Desired& d) {
        std::shared_ptr<const appengine::CompareMemo> memo;
        {
            std::lock_guard lock(impl_.mu);
            memo = impl_.apps[key_].compareMemo;
        }
        cluster_->live().compareInto(d, ref_, parsed_.spec, std::move(memo));
        std::lock_guard lock(impl_.mu);
        impl_.apps[key_].compareMemo = d.compared.memo;
    }

    Impl& impl_;
    const std::string key_;
    AppRef ref_;
    const std::string now_;
    ReconcileOutcome out_;
    // The status as this reconcile found it, and the fields it wants to change.
    std::shared_ptr<const json> baselineHold_;
    json updates_ = json::object();
    json conditions_;
    int64_t generation_ = 0;
    appengine::ParseResult parsed_;
    json destination_;                  // spec.destination as found
    std::shared_ptr<Cluster> cluster_;  // where it deploys (held for this reconcile)
    ProjectLookup project_;
    std::vector<std::string> opErrors_;
    std::vector<appengine::InventoryEntry> inventory_;
    Desired desired_;
    bool cachesPending_ = false;
    // The decision.
    std::string phase_;  // operationState.phase as found
    std::optional<SyncRequest> req_;
    std::optional<Desired> opDesired_;  // a manual sync or rollback to another revision
    std::string syncError_;
    Clock::TimePoint steadyNow_;
    std::optional<Clock::TimePoint> retryAt_;
};

ReconcileOutcome ApplicationController::Impl::reconcile(const std::string& ns,
                                                        const std::string& name) {
    ensureBaseInformers();
    return ReconcilePass(*this, ns, name).run();
}

ReconcileOutcome ApplicationController::Impl::ReconcilePass::run() {
    if (!impl_.store.load(ref_)) {
        impl_.store.forget(key_);
        impl_.clusters.release(key_);
        std::lock_guard lock(impl_.mu);
        impl_.apps.erase(key_);
        return out_;
    }
    if (ref_.object["metadata"].contains("deletionTimestamp")) return impl_.handleDeletion(ref_);
    baselineHold_ = ref_.status;
    conditions_ = fieldOr(baseline(), "conditions", json::array());
    if (!conditions_.is_array()) conditions_ = json::array();
    generation_ = generationOf(ref_.object);
    updates_["observedGeneration"] = generation_;

    if (!checkSpec()) return out_;
    const bool rendered = resolveAndRender();
    if (!rendered) return out_;
    if (cachesPending_) {
        out_.record.succeeded = false;
        out_.record.error = "waiting for the watch caches of the application's kinds to sync";
        out_.requeueAfter = kNotReadyRequeue;
        return out_;
    }
    compare(desired_);
    ensurePostDeleteFinalizer();
    if (!decide()) return out_;
    if (syncError_.empty()) {
        appengine::removeCondition(conditions_, appengine::kSyncError);
    } else {
        appengine::setCondition(conditions_, appengine::kSyncError, syncError_, now_);
    }
    if (!syncWindowAllows()) req_.reset();
    if (req_) sync();
    writeTargetStatus();
    return out_;
}

// A spec that does not parse, or that its project does not permit: InvalidSpecError, nothing
// else is done.
bool ApplicationController::Impl::ReconcilePass::checkSpec() {
    parsed_ = appengine::parseApplication(ref_.object);
    std::vector<std::string> specErrors;
    for (auto& e : parsed_.errors)
        (e.rfind("operation", 0) == 0 ? opErrors_ : specErrors).push_back(e);
    if (specErrors.empty() && resolveCluster(specErrors)) {
        project_ = impl_.lookupProject(parsed_.spec.project);
        if (project_.state == ProjectLookup::State::NotReady) {
            out_.record.succeeded = false;
            out_.record.error = project_.error;
            out_.requeueAfter = kNotReadyRequeue;
            return false;
        }
        specErrors = projectViolations();
    }
    if (!specErrors.empty()) {
        const std::string msg = join(specErrors, "; ");
        appengine::setCondition(conditions_, appengine::kInvalidSpecError, msg, now_);
        withConditions();
        updates_["sync"] = currentSync("Unknown");
        impl_.store.eventOnce(ref_, kube::EventType::Warning, "InvalidSpec", msg);
        impl_.store.writeStatus(ref_, updates_);
        ReconcileRecord& rec = out_.record;
        rec.succeeded = false;
        rec.error = msg;
        rec.syncStatus = "Unknown";
        rec.health = detail::strAt(baseline(), "/health/status"_json_pointer);
        return false;
    }
    appengine::removeCondition(conditions_, appengine::kInvalidSpecError);
    destination_ = ref_.object["spec"].value("destination", json::object());
    impl_.store.forgetEvent(key_, "InvalidSpec");
    // Fields Argo CD acts on and this version does not: said once, never silently dropped.
    auto fields = appengine::unimplementedFieldsIn(ref_.object);
    for (const std::string& f : project_.fieldsWithoutEffect)
        fields.push_back("AppProject " + project_.parsed.project.name + " " + f);
    if (!fields.empty()) {
        impl_.store.eventOnce(ref_, kube::EventType::Warning, "FieldsNotImplemented",
                              join(fields, ", ") +
                                  ": set, but not implemented by this version of Sluice, so "
                                  "ignored (see docs/crds.md)");
    } else {
        impl_.store.forgetEvent(key_, "FieldsNotImplemented");
    }
    return true;
}

// The destination cluster (a cluster Secret, or the local cluster). False, with Argo CD's
// message in specErrors, when the destination names no known cluster.
bool ApplicationController::Impl::ReconcilePass::resolveCluster(
    std::vector<std::string>& specErrors) {
    const appengine::Destination& d = parsed_.spec.destination;
    std::string error;
    cluster_ = impl_.clusters.use(key_, d.server, d.name, error);
    if (!cluster_) specErrors.push_back(error);
    return cluster_ != nullptr;
}

// The rules of the Application's project its spec breaks: a project that does not exist or
// does not parse, the Application's namespace, its sources, its destination.
std::vector<std::string> ApplicationController::Impl::ReconcilePass::projectViolations() const {
    const appengine::ApplicationSpec& spec = parsed_.spec;
    if (project_.state == ProjectLookup::State::Missing) return {project_.error};
    const appengine::Project& project = project_.parsed.project;
    if (!project_.parsed.errors.empty())
        return {"project '" + project.name + "' is invalid: " + join(project_.parsed.errors, "; ")};
    std::vector<std::string> repos;
    for (const appengine::Source& s : spec.sources) repos.push_back(s.repoURL);
    return appengine::specViolations(project, ref_.ns, impl_.opts.controlNamespace, repos,
                                     appDestination());
}

// How fresh the resolved revision must be: an explicit refresh wants a fetch from now on; a
// changed spec accepts one from a moment ago (so a thousand new Applications of one repository
// share a fetch); otherwise whatever the poll interval allows.
Clock::TimePoint ApplicationController::Impl::ReconcilePass::freshAfter(bool explicitRefresh) {
    Clock::TimePoint fresh{};
    const auto start = impl_.clock.now();
    // A requested operation (sync, rollback) is judged against the branch as it is now.
    if (explicitRefresh || ref_.object.contains("operation")) fresh = start;
    std::lock_guard lock(impl_.mu);
    detail::AppState& st = impl_.apps[key_];
    if (st.refreshRequestedAt) fresh = std::max(fresh, *st.refreshRequestedAt);
    st.refreshRequestedAt.reset();
    const json& observed = fieldOr(baseline(), "observedGeneration", kNoValue);
    const bool specChanged = st.comparedGeneration >= 0 ? st.comparedGeneration != generation_
                                                        : !(observed.is_number_integer() &&
                                                            observed.get<int64_t>() == generation_);
    if (specChanged) fresh = std::max(fresh, start - kSpecChangeFetchReuse);
    return fresh;
}

// Resolves (at most once per poll interval unless something asks for it) and renders the
// source, and makes sure the live state can be read. False: a ComparisonError was reported.
bool ApplicationController::Impl::ReconcilePass::resolveAndRender() {
    const auto refreshAnnotations = refreshAnnotationsOf(ref_.object);
    const auto fresh = freshAfter(!refreshAnnotations.empty());
    inventory_ = recordedInventory();
    const appengine::ApplicationSpec& spec = parsed_.spec;
    std::string error;
    try {
        bool fetched = false;
        desired_ = impl_.sources.desiredFor(
            ref_, spec, impl_.sources.resolveTargets(spec, fresh, fetched), inventory_, *cluster_);
        error = preparedProblems(desired_, cluster_->managedScope(), project_.parsed.project,
                                 appDestination());
    } catch (const git::GitError& e) {
        error = git::scrubUrl(e.what());
    } catch (const render::RenderError& e) {
        error = git::scrubUrl(e.what());
    } catch (const kube::TransportError& e) {  // discovery of the destination cluster
        error = unreachable(e.what());
    }
    // Live state we may not read (RBAC, an unreachable cluster) is missing information like a
    // failed render.
    if (error.empty()) {
        const auto kinds = LiveState::kindsOf(desired_.prepared->objects, inventory_);
        auto caches = cluster_->live().ensureInformers(kinds, kCacheWait);
        if (caches.state == cache::ScopedInformer::SyncState::Failed)
            error = "cannot watch the application's resources: " + caches.error;
        else if (const std::string down = cluster_->live().connectionError(kinds); !down.empty())
            error = unreachable(down);
        cachesPending_ = error.empty() && caches.state == cache::ScopedInformer::SyncState::Pending;
    }
    impl_.store.removeAnnotations(ref_, refreshAnnotations);
    if (!error.empty()) {
        out_ = comparisonFailed(error);
        return false;
    }
    appengine::removeCondition(conditions_, appengine::kComparisonError);
    impl_.store.forgetEvent(key_, "ComparisonError");
    {
        std::lock_guard lock(impl_.mu);
        impl_.apps[key_].comparedGeneration = generation_;
    }
    out_.record.revision = desired_.revision.sha;
    return true;
}

// Nothing is synced or pruned on missing information: sync status Unknown, retried with backoff.
ReconcileOutcome ApplicationController::Impl::ReconcilePass::comparisonFailed(
    const std::string& error) {
    appengine::setCondition(conditions_, appengine::kComparisonError, error, now_);
    // Conditions describe the present: whether a sync would fail is unknown now.
    appengine::removeCondition(conditions_, appengine::kSyncError);
    withConditions();
    updates_["sync"] = currentSync("Unknown");
    impl_.store.eventOnce(ref_, kube::EventType::Warning, "ComparisonError", error);
    impl_.store.writeStatus(ref_, updates_);
    spdlog::warn("application {}: comparison error: {}", key_, error);
    ReconcileOutcome out = out_;
    out.record.succeeded = false;
    out.record.error = error;
    out.record.syncStatus = "Unknown";
    out.record.revision = desired_.revision.sha;
    out.record.health = detail::strAt(baseline(), "/health/status"_json_pointer);
    out.rateLimited = true;
    return out;
}

// Whether the project's sync windows let the sync decided on (req_) run now. A held sync shows
// as the SyncWindowBlocked condition; a held operation stays Running with Argo CD's message
// and runs once a window allows it. Checked again at the next minute (windows open and close
// on minutes) or when the project changes.
bool ApplicationController::Impl::ReconcilePass::syncWindowAllows() {
    if (!req_) {
        appengine::removeCondition(conditions_, appengine::kSyncWindowBlocked);
        return true;
    }
    const auto wallNow = impl_.clock.wallNow();
    const appengine::SyncWindowVerdict v = appengine::evaluateSyncWindows(
        project_.parsed.project, ref_.name, appDestination(), wallNow);
    if (req_->automated ? v.automatedAllowed : v.manualAllowed) {
        appengine::removeCondition(conditions_, appengine::kSyncWindowBlocked);
        impl_.store.forgetEvent(key_, "SyncBlocked");
        return true;
    }
    std::string msg = std::string(appengine::kSyncBlockedMessage) + ": " + v.reason;
    if (!v.active.empty()) msg += " (" + join(v.active, ", ") + ")";
    msg += req_->automated ? "; automated sync held" : "; manual sync held (no manualSync)";
    appengine::setCondition(conditions_, appengine::kSyncWindowBlocked, msg, now_);
    impl_.store.eventOnce(ref_, kube::EventType::Normal, "SyncBlocked", msg);
    if (!req_->automated) {
        const json operation = recordedOperation(req_->op.raw);
        json os = opState();
        if (!os.is_object() || fieldOr(os, "operation", json()) != operation)
            os = {{"operation", operation}, {"startedAt", now_}};
        os["phase"] = "Running";
        os["message"] = appengine::kSyncBlockedMessage;
        os.erase("finishedAt");
        updates_["operationState"] = std::move(os);
    }
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(wallNow.time_since_epoch());
    const auto nextMinute = std::chrono::milliseconds((60 - secs.count() % 60) * 1000 + 100);
    out_.requeueAfter = out_.requeueAfter ? std::min(*out_.requeueAfter, nextMinute) : nextMinute;
    return false;
}

// Ends the operation recorded in the status (nothing is syncing now).
void ApplicationController::Impl::ReconcilePass::finishOperation(const std::string& phase,
                                                                 const std::string& message,
                                                                 const json& operation) {
    json os = operation.is_null() ? json(fieldOr(baseline(), "operationState", json::object()))
                                  : json{{"operation", operation}};
    if (!os.is_object()) os = json::object();
    os["phase"] = phase;
    os["message"] = message;
    os["finishedAt"] = now_;
    if (!os.contains("startedAt")) os["startedAt"] = now_;
    updates_["operationState"] = std::move(os);
}

// A termination that no running sync carried out (its worker gave up on a failed write, the
// process restarted, or the sync began from a cache older than the request): the hooks the
// operation's last progress shows running are deleted, as a sync that sees the termination
// does, if they still carry this Application's tracking id. `os` is the state to write.
void ApplicationController::Impl::ReconcilePass::stopRunningHooks(json& os) {
    auto resultsOf = [](const json& state) {
        const json* sr =
            fieldOr(state, "syncResult", kNoValue).is_object() ? &state.at("syncResult") : nullptr;
        json r = sr ? appengine::unpackedField(fieldOr(*sr, "resources", kNoValue)) : json();
        return r.is_array() ? r : json::array();  // the cached status keeps it as text
    };
    // The status this reconcile began with may predate the last progress: the one re-read
    // when a write found the termination is looked at too.
    json running = resultsOf(opState());
    if (ref_.status && ref_.status != baselineHold_)
        for (json& r : resultsOf(fieldOr(*ref_.status, "operationState", kEmptyObject)))
            running.push_back(std::move(r));
    std::set<std::string> stopped;
    for (const json& r : running) {
        if (!r.is_object() || r.value("hookPhase", "") != "Running") continue;
        const kube::GroupVersionKind gvk =
            detail::gvkOf(r.value("group", ""), r.value("version", ""), r.value("kind", ""));
        const std::string ns = r.value("namespace", ""), name = r.value("name", "");
        try {
            const json live = cluster_->client().get(gvk, ns, name);
            const std::string mine = appengine::trackingIdFor(ref_.instance, live).str();
            if (detail::strAt(live, "/metadata/annotations"_json_pointer /
                                        appengine::kTrackingAnnotation) == mine) {
                kube::DeleteOptions del;
                del.propagationPolicy = "Background";
                del.preconditionUid = kube::uidOf(live);
                cluster_->client().remove(gvk, ns, name, del);
            }
        } catch (const kube::ApiError& e) {
            if (!e.isNotFound() && e.code() != 409)
                spdlog::warn("application {}: stopping hook {}/{}: {}", key_, ns, name, e.what());
        }
        stopped.insert(r.value("kind", "") + "/" + ns + "/" + name);
    }
    if (stopped.empty() || !os.is_object()) return;
    json results = resultsOf(os);
    for (json& r : results)
        if (r.is_object() && r.value("hookPhase", "") == "Running" &&
            stopped.count(r.value("kind", "") + "/" + r.value("namespace", "") + "/" +
                          r.value("name", ""))) {
            r["hookPhase"] = "Failed";
            r["message"] = "Operation terminated";
        }
    if (!results.empty()) os["syncResult"]["resources"] = std::move(results);
}

// Whether to sync, and what: a termination, a requested operation, or the automated policy.
// False: the reconcile ends here (out_ says when to come back).
bool ApplicationController::Impl::ReconcilePass::decide() {
    phase_ = detail::strAt(opState(), "/phase"_json_pointer);
    steadyNow_ = impl_.clock.now();
    {
        std::lock_guard lock(impl_.mu);
        retryAt_ = impl_.apps[key_].retryAt;
    }
    if (phase_ == "Terminating") {
        // Syncs run on this worker, so none is running now: the operation that was waiting for
        // a retry (or was cut short by a restart) ends here.
        finishOperation("Failed", "Operation terminated", json());
        stopRunningHooks(updates_["operationState"]);
        setRetryAt(std::nullopt);
        impl_.store.event(ref_, kube::EventType::Warning, "SyncFailed", "Operation terminated");
        impl_.store.removeOperation(ref_);
        parsed_.operation.reset();
        return true;
    }
    if (parsed_.operation) return decideOperation();
    if (parsed_.spec.syncPolicy.automated) {
        decideAutomated();
    } else if (phase_ == "Running") {
        // Neither an operation nor automation is left to finish what was running.
        finishOperation("Failed", "Operation cancelled: no operation or automated sync policy",
                        json());
    }
    return true;
}

// Resolves and compares the revision an operation names when it is not the target (a manual
// sync or rollback to another revision) into opDesired_. False: wait for the watch caches.
bool ApplicationController::Impl::ReconcilePass::resolveOperationTarget(
    const appengine::Operation& op, std::string& wanted, std::string& error) {
    const appengine::ApplicationSpec& spec = parsed_.spec;
    wanted = spec.multiSource ? join(op.revisions, ",") : op.revision;
    const std::string target = spec.multiSource ? "" : spec.source.targetRevision;
    if (wanted.empty() || wanted == desired_.revision.sha || wanted == target) return true;
    std::vector<git::Revision> revs;
    if (spec.multiSource) {
        if (op.revisions.size() != spec.sources.size())
            throw render::RenderError("operation.sync.revisions", 0,
                                      "names " + std::to_string(op.revisions.size()) +
                                          " revision(s) for " +
                                          std::to_string(spec.sources.size()) + " sources");
        for (size_t i = 0; i < spec.sources.size(); ++i)
            revs.push_back(impl_.sources.resolveExact(spec.sources[i], op.revisions[i]));
    } else {
        revs.push_back(impl_.sources.resolveExact(spec.source, wanted));
    }
    std::vector<std::string> shas;
    for (const auto& r : revs) shas.push_back(r.sha);
    if (join(shas, ",") == desired_.revision.sha) return true;
    opDesired_ = impl_.sources.desiredFor(ref_, spec, revs, inventory_, *cluster_);
    error = preparedProblems(*opDesired_, cluster_->managedScope(), project_.parsed.project,
                             appDestination());
    if (!error.empty()) return true;
    auto caches = cluster_->live().ensureInformers(
        LiveState::kindsOf(opDesired_->prepared->objects, inventory_), kCacheWait);
    if (caches.state == cache::ScopedInformer::SyncState::Failed) {
        error = "cannot watch the application's resources: " + caches.error;
    } else if (caches.state == cache::ScopedInformer::SyncState::Pending) {
        return false;
    } else {
        compare(*opDesired_);
    }
    return true;
}

// A requested operation (operation.sync): started, continued, or ended with its error.
bool ApplicationController::Impl::ReconcilePass::decideOperation() {
    const appengine::Operation& op = *parsed_.operation;
    const appengine::ApplicationSpec& spec = parsed_.spec;
    const bool continuing =
        phase_ == "Running" && fieldOr(opState(), "operation", json()) == recordedOperation(op.raw);
    if (!opErrors_.empty()) {
        finishOperation("Error", join(opErrors_, "; "), recordedOperation(op.raw));
        impl_.store.event(ref_, kube::EventType::Warning, "SyncFailed", join(opErrors_, "; "));
        impl_.store.removeOperation(ref_);
        return true;
    }
    if (continuing && retryPending()) {
        out_.requeueAfter =
            std::chrono::duration_cast<std::chrono::milliseconds>(*retryAt_ - steadyNow_);
        return true;
    }
    SyncRequest r;
    r.op = op;
    r.request.prune = op.prune;
    if (!op.syncOptions.empty()) {
        std::vector<std::string> ignored;
        r.request.options = appengine::SyncOptions::parse(op.syncOptions, ignored);
    } else {
        r.request.options = spec.syncPolicy.options;
    }
    r.request.applyOutOfSyncOnly = r.request.options.applyOutOfSyncOnly;
    r.retry = op.retry ? op.retry : spec.syncPolicy.retry;
    r.retryCount = continuing ? continuingRetryCount() : 0;
    r.startedAt = continuing ? continuingStartedAt() : now_;
    std::string wanted, error;
    try {
        if (!resolveOperationTarget(op, wanted, error)) {
            out_.record.succeeded = false;
            out_.record.error = "waiting for watch caches";
            out_.requeueAfter = kNotReadyRequeue;
            return false;
        }
    } catch (const git::GitError& e) {
        error = git::scrubUrl(e.what());
    } catch (const render::RenderError& e) {
        error = git::scrubUrl(e.what());
    }
    if (error.empty()) {
        req_ = std::move(r);
        return true;
    }
    const std::string msg = "revision " + wanted + ": " + error;
    finishOperation("Error", msg, recordedOperation(op.raw));
    impl_.store.event(ref_, kube::EventType::Warning, "SyncFailed", msg);
    impl_.store.removeOperation(ref_);
    return true;
}

// The sync the automated policy starts (or continues) for the target revision.
ApplicationController::Impl::SyncRequest
ApplicationController::Impl::ReconcilePass::automatedRequest(bool continuing, bool selfHeal) const {
    const appengine::ApplicationSpec& spec = parsed_.spec;
    const bool prune = spec.syncPolicy.prune;
    SyncRequest r;
    r.automated = true;
    r.selfHeal = selfHeal;
    r.op.automated = true;
    r.op.revision = desired_.revision.sha;
    r.op.prune = prune;
    r.op.raw = {{"sync", {{"prune", prune}}}, {"initiatedBy", {{"automated", true}}}};
    if (spec.multiSource) {
        r.op.revisions = desired_.revisions;
        r.op.raw["sync"]["revisions"] = desired_.revisions;
    } else {
        r.op.raw["sync"]["revision"] = desired_.revision.sha;
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
    r.startedAt = continuing ? continuingStartedAt() : now_;
    return r;
}

// The automated sync policy (decideAutoSync) applied.
void ApplicationController::Impl::ReconcilePass::decideAutomated() {
    using Action = detail::AutoSyncDecision::Action;
    const appengine::ApplicationSpec& spec = parsed_.spec;
    const bool prune = spec.syncPolicy.prune;
    const json& lastResult = fieldOr(opState(), "syncResult", kEmptyObject);
    const std::string lastRevision = recordedRevision(lastResult);
    // As recorded in status: without credentials in URLs.
    const json currentSource =
        spec.multiSource
            ? source::redactedSources(ref_.object["spec"].value("sources", json::array()))
            : source::redactedSources(ref_.object["spec"].value("source", json::object()));
    const json lastSource = fieldOr(lastResult, spec.multiSource ? "sources" : "source", json());
    detail::AutoSyncInput in;
    in.needsSync = detail::needsSync(desired_.compared, prune);
    in.sameRevision = lastRevision == desired_.revision.sha && lastSource == currentSource;
    in.phase = phase_;
    in.retryPending = retryPending();
    in.rendersNothing = desired_.prepared->objects.empty();
    in.wouldPrune = detail::wouldPrune(desired_.compared, prune);
    in.allowEmpty = spec.syncPolicy.allowEmpty;
    in.selfHeal = spec.syncPolicy.selfHeal;
    const std::string heldRevision =
        detail::strAt(baseline(), "/postSyncRollback/failedRevision"_json_pointer);
    in.heldAfterRollback = !heldRevision.empty() && heldRevision == desired_.revision.sha;
    const detail::AutoSyncDecision d = detail::decideAutoSync(in);
    if (d.endEarlierOperation) {
        // Its objects are in the inventory (written ahead), so whatever it applied is pruned
        // if no longer wanted.
        const std::string msg =
            "Operation interrupted: the sync to " +
            (lastRevision.empty() ? std::string("an earlier revision") : lastRevision) +
            " did not finish, and the target is now " + desired_.revision.sha;
        finishOperation("Failed", msg, json());
        impl_.store.event(ref_, kube::EventType::Warning, "SyncInterrupted", msg);
        setRetryAt(std::nullopt);
    }
    switch (d.action) {
        case Action::WaitRetry:
            out_.requeueAfter =
                std::chrono::duration_cast<std::chrono::milliseconds>(*retryAt_ - steadyNow_);
            break;
        case Action::Continue:
            req_ = automatedRequest(true, false);
            break;
        case Action::Sync:
            req_ = automatedRequest(false, false);
            break;
        case Action::SelfHeal:
            req_ = automatedRequest(false, true);
            break;
        case Action::RefuseEmpty:
            syncError_ = "auto-sync will wipe out all resources: the source renders nothing and " +
                         std::to_string(in.wouldPrune) +
                         " resource(s) would be pruned; set allowEmpty to allow";
            break;
        case Action::RefuseFailed:
            syncError_ = "Failed last sync attempt to " + desired_.revision.sha + ": " +
                         detail::strAt(opState(), "/message"_json_pointer) +
                         "; auto-sync will not be attempted again for this revision";
            break;
        case Action::HoldRolledBack:
            syncError_ = "auto-sync of " + desired_.revision.sha +
                         " is held: its PostSync hooks failed and " +
                         detail::strAt(baseline(), "/postSyncRollback/revision"_json_pointer) +
                         " was restored (syncPolicy.rollbackOnPostSyncFailure); a new revision "
                         "in Git syncs again";
            break;
        case Action::None:
            break;
    }
}

// status.inventory as found, parsed once per change of its (packed) text.
std::vector<appengine::InventoryEntry>
ApplicationController::Impl::ReconcilePass::recordedInventory() {
    const json& field = fieldOr(baseline(), "inventory", kNoValue);
    if (!field.is_string())
        return appengine::parseInventory(field.is_null() ? json::array() : field);
    const std::string digest = source::digest(field.get_ref<const std::string&>());
    std::lock_guard lock(impl_.mu);
    detail::AppState& st = impl_.apps[key_];
    if (st.inventoryDigest != digest) {
        st.inventory = appengine::parseInventory(field);
        st.inventoryDigest = digest;
    }
    return st.inventory;
}

// status.resources of desired_.compared, packed as the cache keeps it (appengine::packStatus).
// A compare that reused its memo whole finds the text built for that memo in the status (by
// its digest): nothing is built.
json ApplicationController::Impl::ReconcilePass::resourcesField() {
    const auto& compared = desired_.compared;
    const json& found = fieldOr(baseline(), "resources", kNoValue);
    if (compared.reused && found.is_string()) {
        const std::string digest = source::digest(found.get_ref<const std::string&>());
        std::lock_guard lock(impl_.mu);
        const detail::AppState& st = impl_.apps[key_];
        if (st.resourcesFor.lock() == compared.memo && st.resourcesDigest == digest) return found;
    }
    json packed = {{"resources", appengine::resourcesStatus(compared)}};
    appengine::packStatus(packed);
    const std::string digest = source::digest(packed["resources"].get_ref<const std::string&>());
    std::lock_guard lock(impl_.mu);
    detail::AppState& st = impl_.apps[key_];
    st.resourcesDigest = digest;
    st.resourcesFor = compared.memo;
    return std::move(packed["resources"]);
}

// A source with PostDelete hooks: the Application gets the post-delete finalizer (as Argo CD
// adds it), so that deleting it runs them.
void ApplicationController::Impl::ReconcilePass::ensurePostDeleteFinalizer() {
    const auto& hooks = desired_.compared.hooks;
    if (std::none_of(hooks.begin(), hooks.end(), [](const appengine::HookResource& h) {
            return h.info.runsIn(appengine::HookType::PostDelete);
        }))
        return;
    const json finalizers = ref_.object["metadata"].value("finalizers", json::array());
    for (const char* f : {appengine::kPostDeleteFinalizer, appengine::kArgoPostDeleteFinalizer})
        if (std::find(finalizers.begin(), finalizers.end(), f) != finalizers.end()) return;
    try {
        impl_.store.addFinalizer(ref_, appengine::kPostDeleteFinalizer);
    } catch (const kube::ApiError& e) {
        // Retried at the next reconcile; a sync is not held up by it.
        spdlog::warn("application {}: adding finalizer {}: {}", key_,
                     appengine::kPostDeleteFinalizer, e.message());
    }
}

// syncPolicy.rollbackOnPostSyncFailure, after an automated sync: a PostSync hook (a smoke
// test) that failed brings back the last revision in history, through an operation as a
// user's rollback, and the failed revision is held from automated sync (status.
// postSyncRollback) until Git moves past it.
void ApplicationController::Impl::ReconcilePass::rollBackIfSmokeTestFailed(const SyncOutcome& so,
                                                                           const Desired& target) {
    const appengine::ApplicationSpec& spec = parsed_.spec;
    const std::string failed = target.revision.sha;
    const std::string held =
        detail::strAt(baseline(), "/postSyncRollback/failedRevision"_json_pointer);
    if (so.phase == "Succeeded" && !held.empty() && held != failed)
        updates_["postSyncRollback"] = nullptr;  // Git moved past it and the sync held
    detail::RollbackInput in;
    in.enabled = spec.syncPolicy.rollbackOnPostSyncFailure;
    in.automated = req_->automated;
    in.phase = so.phase;
    in.retryScheduled = so.retryScheduled;
    in.failedHookPhase = so.failedHookPhase;
    in.failedRevision = failed;
    if (ref_.status->contains("history"))
        in.history = appengine::unpackedField((*ref_.status)["history"]);
    if (!detail::rollbackApplies(in)) return;
    const json entry = detail::rollbackTarget(in);
    if (entry.is_null()) {
        impl_.store.event(ref_, kube::EventType::Warning, "RollbackSkipped",
                          "PostSync hook failed at " + failed +
                              ", and the history has no earlier revision to roll back to");
        return;
    }
    const std::string good = recordedRevision(entry);
    json op = {
        {"sync", {{"prune", spec.syncPolicy.prune}}},
        {"initiatedBy", {{"username", "sluice"}, {"automated", true}}},
        {"info",
         json::array({{{"name", "Reason"}, {"value", "PostSync hook failed at " + failed}}})}};
    if (entry.contains("revisions")) {
        op["sync"]["revisions"] = entry["revisions"];
    } else {
        op["sync"]["revision"] = entry.value("revision", "");
    }
    updates_["postSyncRollback"] = {
        {"failedRevision", failed}, {"revision", good}, {"at", now_}, {"message", so.message}};
    impl_.store.setOperation(ref_, op);
    const std::string msg = "PostSync hook failed at " + failed + ": rolling back to " + good +
                            " (syncPolicy.rollbackOnPostSyncFailure)";
    spdlog::warn("application {}: {}", key_, msg);
    impl_.store.event(ref_, kube::EventType::Warning, "RollingBack", msg);
}

// Runs the sync decided on, then compares again against what it left.
void ApplicationController::Impl::ReconcilePass::sync() {
    const appengine::ApplicationSpec& spec = parsed_.spec;
    if (req_->selfHeal) {
        // Name who drifted and what, before the sync puts it back.
        const std::string msg = detail::driftMessage(desired_.compared, impl_.opts.fieldManager);
        impl_.counters.driftCorrections++;
        spdlog::info("application {}: {}", key_, msg);
        impl_.store.event(ref_, kube::EventType::Normal, "DriftCorrected", msg);
    }
    Desired& target = opDesired_ ? *opDesired_ : desired_;
    req_->impersonation = appengine::serviceAccountToImpersonate(
        project_.parsed.project, cluster_->entry().server, spec.destination.server,
        spec.destination.namespace_, ref_.ns);
    SyncOutcome so = impl_.runSync(ref_, *cluster_, spec, target, *req_, updates_);
    // The sync stops the hooks it ran; those of the run it resumed are stopped here.
    if (so.terminated && updates_.contains("operationState"))
        stopRunningHooks(updates_["operationState"]);
    ReconcileRecord& rec = out_.record;
    rec.synced = true;
    rec.succeeded = so.phase == "Succeeded";
    if (!rec.succeeded && !so.interrupted) rec.error = so.message;
    setRetryAt(so.retryScheduled ? std::optional(impl_.clock.now() + so.retryDelay) : std::nullopt);
    if (so.retryScheduled) out_.requeueAfter = so.retryDelay;
    if (!so.interrupted && !so.retryScheduled && parsed_.operation)
        impl_.store.removeOperation(ref_);
    if (req_->automated) rollBackIfSmokeTestFailed(so, target);
    // Compare again against what the sync left, once the caches have seen its writes.
    if (!so.interrupted) cluster_->live().waitForCaches(so, kCacheWait);
    if (updates_.contains("inventory"))
        desired_.inventory = appengine::parseInventory(updates_["inventory"]);
    if (cluster_->live()
            .ensureInformers(LiveState::kindsOf(desired_.prepared->objects, desired_.inventory),
                             kCacheWait)
            .state == cache::ScopedInformer::SyncState::Synced)
        compare(desired_);
    if (so.interrupted) out_.requeueAfter = kNotReadyRequeue;
}

// AppProject spec.orphanedResources with warn: true: OrphanedResourceWarning while the
// destination namespace holds top-level objects no Application manages, among the kinds the
// destination cluster watches (appengine/orphans.h). Monitoring without warn sets nothing.
void ApplicationController::Impl::ReconcilePass::checkOrphans() {
    std::optional<appengine::OrphanedResourcesSettings> settings;
    const appengine::Project& project = project_.parsed.project;
    if (project_.state == ProjectLookup::State::Found && !project.builtIn && impl_.base.projects)
        if (auto obj = impl_.base.projects->store().get(impl_.opts.controlNamespace, project.name))
            settings = appengine::parseOrphanedResources(*obj);
    const std::string& ns = parsed_.spec.destination.namespace_;
    if (!settings || !settings->warn || ns.empty()) {
        appengine::removeCondition(conditions_, appengine::kOrphanedResourceWarning);
        return;
    }
    appengine::OrphanInput in;
    in.ns = ns;
    in.project = &project;
    in.settings = std::move(*settings);
    for (const json& o : desired_.prepared->objects) in.own.insert(appengine::ResourceKey::of(o));
    for (const auto& e : desired_.inventory) in.own.insert(e.key());
    cache::Informer* apps = impl_.base.applications;
    const std::string controlNs = impl_.opts.controlNamespace;
    in.applicationExists = [apps, &controlNs](const std::string& instance) {
        if (!apps) return true;
        const auto underscore = instance.find('_');
        if (underscore == std::string::npos)
            return apps->store().get(controlNs, instance) != nullptr;
        return apps->store().get(instance.substr(0, underscore), instance.substr(underscore + 1)) !=
               nullptr;
    };
    for (auto& o : cluster_->live().namespaceObjects(ns)) in.live.push_back(std::move(o));
    const auto orphans = appengine::findOrphans(in);
    if (orphans.empty()) {
        appengine::removeCondition(conditions_, appengine::kOrphanedResourceWarning);
    } else {
        appengine::setCondition(conditions_, appengine::kOrphanedResourceWarning,
                                appengine::orphanedResourcesMessage(orphans.size()), now_);
    }
}

// The status of the target revision: sync, source types, health, resources, conditions.
void ApplicationController::Impl::ReconcilePass::writeTargetStatus() {
    const appengine::ApplicationSpec& spec = parsed_.spec;
    json revision = revisionAndSource(ref_, spec, desired_);
    updates_["sync"] = {{"status", desired_.compared.synced ? "Synced" : "OutOfSync"}};
    for (const char* k : {"revision", "revisions"})
        if (revision.contains(k)) updates_["sync"][k] = revision[k];
    updates_["sync"]["comparedTo"] = {
        {"destination", ref_.object["spec"].value("destination", json::object())}};
    for (const char* k : {"source", "sources"})
        if (revision.contains(k)) updates_["sync"]["comparedTo"][k] = revision[k];
    if (spec.multiSource) {
        updates_["sourceTypes"] = desired_.sourceTypes;
        updates_["sourceType"] = nullptr;
    } else {
        updates_["sourceType"] =
            desired_.sourceTypes.empty() ? json() : json(desired_.sourceTypes[0]);
        updates_["sourceTypes"] = nullptr;
    }
    updates_["health"] = {{"status", health::toString(desired_.compared.health)}};
    updates_["resources"] = resourcesField();
    const std::string sharedWarning = join(desired_.compared.sharedResourceWarnings, "; ");
    if (sharedWarning.empty()) {
        appengine::removeCondition(conditions_, appengine::kSharedResourceWarning);
    } else {
        const std::string msg = sharedWarning + " (not applied by " + ref_.instance + ")";
        appengine::setCondition(conditions_, appengine::kSharedResourceWarning, msg, now_);
        impl_.store.eventOnce(ref_, kube::EventType::Warning, "SharedResourceWarning", msg);
    }
    checkOrphans();
    withConditions();
    if (!impl_.store.writeStatus(ref_, updates_)) {
        // The user asked to terminate the operation while we were finishing it: keep what the
        // sync did (inventory, history) and record the termination.
        if (detail::strAt(*ref_.status, "/operationState/phase"_json_pointer) == "Terminating") {
            json os = updates_.contains("operationState")
                          ? updates_["operationState"]
                          : fieldOr(*ref_.status, "operationState", json::object());
            os["phase"] = "Failed";
            os["message"] = "Operation terminated";
            os["finishedAt"] = now_;
            stopRunningHooks(os);
            updates_["operationState"] = std::move(os);
            setRetryAt(std::nullopt);
            impl_.store.writeStatus(ref_, updates_);
            impl_.store.removeOperation(ref_);
        }
        out_.requeueAfter = std::chrono::milliseconds(0);
    }
    ReconcileRecord& rec = out_.record;
    rec.syncStatus = updates_["sync"]["status"];
    rec.health = updates_["health"]["status"];
    if (!syncError_.empty() && rec.error.empty()) {
        rec.error = syncError_;
        rec.succeeded = false;
    }
}

}  // namespace sluice::appcontroller
