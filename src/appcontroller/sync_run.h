#pragma once
// One sync operation's phases (Impl::SyncRun): sync.cpp runs resources, sync_hooks.cpp runs
// resource hooks.
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "impl.h"
#include "util.h"

namespace sluice::appcontroller {

namespace detail {

// "deployment.apps/web", as kubectl and Argo CD name objects in messages.
inline std::string kubectlName(const appengine::ResourceKey& k) {
    std::string kind = k.kind;
    for (auto& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return kind + (k.group.empty() ? "" : "." + k.group) + "/" + k.name;
}

inline std::string describeKey(const appengine::ResourceKey& k) {
    return describe(k.group, k.kind, k.ns, k.name);
}

}  // namespace detail

// One sync operation, phase by phase: begin (Running in the status) -> CreateNamespace ->
// validate (dry run of every object and hook that can be dry-run before anything is written,
// as gitops-engine dry-runs every task first) -> PreSync hooks -> bootstrap (Namespaces, CRDs)
// -> validate what needed them -> waves (apply, prune, Sync hooks, wait healthy) -> PruneLast
// -> PostSync hooks -> finish (outcome, inventory, history, Events).
class ApplicationController::Impl::SyncRun {
  public:
    using Impl = ApplicationController::Impl;
    SyncRun(Impl& impl, AppRef& ref, Cluster& cluster, const appengine::ApplicationSpec& spec,
            Desired& desired, const Impl::SyncRequest& req, json& updates)
        : impl_(impl),
          client_(cluster.client()),
          writer_(&cluster.client()),
          cluster_(cluster),
          live_(cluster.live()),
          ref_(ref),
          spec_(spec),
          req_(req),
          updates_(updates),
          compared_(desired.compared),
          plan_(appengine::planSync(compared_, req.request)),
          options_(req.request.options),
          sha_(desired.revision.sha),
          revisionRecord_(revisionAndSource(ref, spec, desired)),
          dryRun_(req.op.dryRun),
          deadline_(impl.clock.now() + impl.opts.syncTimeout),
          stop_(impl.runtime.stopToken()),
          results_(compared_.resources.size()),
          applied_(compared_.resources.size(), false),
          pruned_(compared_.resources.size(), false),
          recorded_(desired.inventory),
          syncId_(appengine::syncIdOf(ref.instance, req.startedAt, req.retryCount)) {
        so_.retryCount = req.retryCount;
        so_.startedAt = req.startedAt;
        for (const auto& e : recorded_) recordedKeys_.insert(e.key());
    }

    // The PostDelete hooks, once the deleted Application's resources are gone (post_delete.cpp).
    // False when one failed (failure()) or the run had to end first.
    bool postDelete() { return hookSteps(plan_.postDelete); }
    const std::string& failure() const { return failure_; }

    SyncOutcome run() {
        impl_.counters.syncs++;
        // The dry run comes before the PreSync hooks: a migration never runs for a sync that
        // validation would refuse.
        bool ok = begin() && impersonate() && createNamespace() && validate(true) &&
                  hookSteps(plan_.preSync) && bootstrap() && validate(false) && waves() &&
                  hookSteps(plan_.postSync);
        reportSkipped(ok);
        // Without the identity to write as, no hook runs either (as Argo CD).
        if (!ok && !noIdentity_) syncFailHooks();
        return finish(ok);
    }

  private:
    bool begin();
    bool impersonate();
    bool createNamespace();
    bool bootstrap();
    // early: what can be dry-run now (objects and hooks); the rest (in a Namespace or of a kind
    // this sync's bootstrap creates) is deferred to the second call, after bootstrap.
    bool validate(bool early);
    bool dependsOnBootstrap(const std::string& ns, const std::string& apiVersion,
                            const std::string& kind);
    std::optional<std::string> dryRunHook(std::size_t index, appengine::HookType phase);
    json hookObject(std::size_t index, appengine::HookType phase, std::string& name) const;
    bool waves();
    void reportSkipped(bool& ok);
    SyncOutcome finish(bool ok);

    bool interruption();
    bool pause() { return stop_.sleepFor(impl_.opts.healthPollInterval); }
    bool recordIntent(const std::vector<std::size_t>& indices);
    std::optional<std::string> applyOne(std::size_t i, bool validateOnly);
    std::optional<std::string> recreate(std::size_t i, const json& payload,
                                        const kube::ApplyOptions& ao, json& response);
    bool applyAll(const std::vector<std::size_t>& indices);
    std::optional<std::string> pruneOne(std::size_t i);
    bool pruneAll(const std::vector<std::size_t>& indices);
    bool waitHealthy(const std::vector<std::size_t>& indices);
    bool waitBootstrapReady();
    // Resource hooks (appengine/hooks.h).
    struct HookRun;
    bool hookSteps(const std::vector<appengine::HookStep>& steps);
    bool runHooks(const std::vector<std::size_t>& indices, appengine::HookType phase);
    bool startHook(HookRun& run);
    bool waitHooks(std::vector<HookRun>& runs);
    void endHook(HookRun& run, const std::string& hookPhase, const std::string& message);
    void stopHooks(std::vector<HookRun>& runs);
    bool deleteAndWait(const kube::GroupVersionKind& gvk, const std::string& ns,
                       const std::string& name, const std::string& uid, bool wait);
    void syncFailHooks();
    void inheritRunningHooks();
    void writeProgress(const std::string& message);
    void setResult(std::size_t i, const std::string& state, const std::string& message);
    kube::GroupVersionKind gvkAt(std::size_t i) const {
        const auto& r = compared_.resources[i];
        return detail::gvkOf(r.key.group, r.version, r.key.kind);
    }

    Impl& impl_;
    // Of the destination cluster: reads with the controller's identity, writes (apply, dry run,
    // create, delete) as the project's destinationServiceAccounts says (impersonate()).
    kube::KubeClient& client_;
    kube::KubeClient* writer_;
    bool noIdentity_ = false;  // the project's service account could not be used
    Cluster& cluster_;
    LiveState& live_;  // of the destination cluster
    AppRef& ref_;
    const appengine::ApplicationSpec& spec_;
    const Impl::SyncRequest& req_;
    json& updates_;
    const appengine::CompareResult& compared_;
    const appengine::SyncPlan plan_;
    const appengine::SyncOptions& options_;
    const std::string sha_;
    const json revisionRecord_;
    const bool dryRun_;
    const Clock::TimePoint deadline_;
    const StopToken stop_;

    SyncOutcome so_;
    json opState_;
    std::string failure_;    // non-empty: the sync failed with this message
    bool terminal_ = false;  // failure not worth a retry (timeout, termination)
    // Per-resource results (index into compared.resources), filled concurrently.
    std::mutex resultsMu_;
    std::vector<std::optional<json>> results_;
    std::vector<bool> applied_;
    std::vector<bool> pruned_;
    std::map<std::size_t, std::string> appliedVersion_;
    // Hook results in the order they ran, for syncResult.resources.
    std::vector<json> hookResults_;
    std::string failedHookPhase_;  // the phase of the hook that failed the sync
    // The inventory written ahead of the applies.
    std::vector<appengine::InventoryEntry> recorded_;
    std::set<appengine::ResourceKey> recordedKeys_;
    const std::string syncId_;                 // names hooks that have only generateName
    std::vector<std::size_t> deferredChecks_;  // dry runs left for after bootstrap
};

}  // namespace sluice::appcontroller
