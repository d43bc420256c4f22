#pragma once
// The pure core of one Application reconcile: prepare the rendered objects, compare them with
// the live objects from the cache, and plan a sync (waves, prunes). No I/O: the live state is
// looked up through a callback, so everything here is testable with plain JSON.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/appengine/hooks.h"
#include "sluice/appengine/spec.h"
#include "sluice/appengine/tracking.h"
#include "sluice/diff/diff.h"
#include "sluice/health/health.h"

namespace sluice::appengine {

using nlohmann::json;

// Identity of one resource, as Argo CD lists it in status.resources.
struct ResourceKey {
    std::string group;
    std::string kind;
    std::string ns;
    std::string name;
    std::string str() const;  // "apps/Deployment:ns/name"
    auto operator<=>(const ResourceKey&) const = default;
    bool operator==(const ResourceKey&) const = default;
    static ResourceKey of(const json& obj);
};

// One entry of status.inventory: what a successful sync applied.
struct InventoryEntry {
    std::string group;
    std::string version;
    std::string kind;
    std::string ns;
    std::string name;
    ResourceKey key() const { return {group, kind, ns, name}; }
    json toJson() const;
    static std::optional<InventoryEntry> fromJson(const json& j);
    bool operator==(const InventoryEntry&) const = default;
};
std::vector<InventoryEntry> parseInventory(const json& statusInventory);

// Whether a kind is namespaced: nullopt when unknown (discovery has no such kind).
using ScopeLookup =
    std::function<std::optional<bool>(const std::string& apiVersion, const std::string& kind)>;

struct PreparedObjects {
    std::vector<json> objects;        // in render order
    std::vector<std::string> errors;  // "file:line: message"; non-empty = do not sync
};

// Readies rendered manifests for compare and apply (resource hooks included; a hook with only
// metadata.generateName gets its name and tracking annotation when a sync creates it): namespaced
// objects without a namespace get destination.namespace; cluster-scoped objects lose any namespace;
// each gets the tracking annotation of `instance`. A kind that `scope` does not know is resolved
// from a CustomResourceDefinition in the same set (spec.scope), else it is an error naming the
// file. Duplicate resources (same group/kind/namespace/name) and objects without a name are errors.
// `sources` gives "file:line" per manifest for messages (may be empty).
PreparedObjects prepareDesired(const std::vector<json>& manifests,
                               const std::vector<std::string>& sources,
                               const std::string& destinationNamespace, const std::string& instance,
                               const ScopeLookup& scope);

// What the controller may manage in the destination cluster. A namespaced installation (RBAC
// granted per namespace) manages the listed namespaces only and, unless allowed, no
// cluster-scoped kinds: as an Argo CD cluster with `namespaces` and `clusterResources`.
struct ManagedScope {
    std::vector<std::string> namespaces;  // empty = every namespace
    bool clusterResources = true;
    bool everything() const { return namespaces.empty() && clusterResources; }
};

// One message per prepared object the scope does not allow (Argo CD's wording): a namespace
// not managed, or a cluster-scoped kind in namespaced mode. Empty = all allowed.
std::vector<std::string> scopeViolations(const std::vector<json>& prepared,
                                         const ManagedScope& scope);

enum class SyncState { Synced, OutOfSync, Missing };
const char* toString(SyncState s);  // "Synced", "OutOfSync", "Missing"

struct ResourceComparison {
    ResourceKey key;
    std::string version;
    std::shared_ptr<const json> desired;  // null for prune candidates (shared, not copied)
    std::shared_ptr<const json> live;     // null when not in the cluster
    SyncState state = SyncState::Synced;
    bool requiresPruning = false;  // live, in the previous inventory, tracked by us, not in git
    bool pruneDisabled = false;    // Prune=false on the live object (never deleted)
    std::string ownedBy;           // another instance tracks this object: not applied
    diff::Result diff;
    // Fields another controller writes (a Canary's target replicas): not compared, and kept out
    // of the apply payload (controlledPayload).
    std::vector<diff::IgnoreRule> controlled;
    health::Assessment health;  // from live; Missing when absent
    int wave = 0;               // desired's wave, or live's for prune candidates
    int kindOrder = 0;
    ObjectSyncOptions objectOptions;  // from desired (or live for prune candidates)
    int desiredIndex = -1;            // desired's position in CompareInput::desired
};

struct CompareResult;

// What compare() found, reused by the next compare of the same Application: whole when
// nothing it read changed (same desired objects, inventory, ignore rules and Canaries, and
// every object it looked up at the same resourceVersion or still absent), else per desired
// object whose desired state (same desiredKey), live state (same resourceVersion) and ignore
// rules are the same. A reconcile that finds nothing changed diffs nothing. Keep the result's
// memo per Application and pass it back in.
struct CompareMemo {
    std::string desiredKey;
    // Without its own memo, and without objects (desired and live are null, the conclusions
    // stay): a memo per Application must not keep old versions of cached objects alive.
    std::shared_ptr<const CompareResult> result;
    // The resourceVersion of each result resource's live object when compared ("" = absent).
    std::vector<std::string> liveVersions;
    // Inventory entries looked up that gave no prune candidate (absent, or not tracked by us).
    struct Looked {
        ResourceKey key;
        std::string version;      // the API version it was looked up at
        std::string liveVersion;  // "" = absent
    };
    std::vector<Looked> otherLooked;
    std::string inventoryDigest;  // of the inventory compared against
    std::string ignoreKey;        // fingerprint of the ignore rules
    std::string canaryKey;        // the Canaries seen (uid and resourceVersion)
};

struct CompareInput {
    std::string instance;
    // prepareDesired().objects, shared with whoever prepared them: a reconcile copies nothing.
    std::shared_ptr<const std::vector<json>> desired = std::make_shared<const std::vector<json>>();
    std::function<std::shared_ptr<const json>(const ResourceKey&)> live;  // null = absent
    std::vector<InventoryEntry> inventory;  // previous status.inventory
    std::vector<diff::IgnoreRule> ignore;
    std::string manager = "sluice";
    // Canaries in the cluster: the Deployments they target have kCanaryControlledPointers
    // ignored (canaryTargetRules). Canaries among `desired` count without being listed here.
    std::vector<std::shared_ptr<const json>> canaries{};
    // Identifies the content of `desired` (same key = same objects), "" when unknown; with the
    // previous compare's memo, unchanged objects are not diffed again.
    std::string desiredKey{};
    std::shared_ptr<const CompareMemo> memo{};
    // The live object of a key at an API version, for reusing the memo's whole result without
    // `live`'s own lookups; null = use `live`.
    std::function<std::shared_ptr<const json>(const ResourceKey&, const std::string& version)>
        liveAt{};
};

// A resource hook among the desired objects (hooks.h): run by a sync, never compared.
struct HookResource {
    ResourceKey key;  // name "" for a hook with only generateName
    std::string version;
    std::shared_ptr<const json> desired;
    HookInfo info;
    int kindOrder = 0;
    int desiredIndex = -1;  // desired's position in CompareInput::desired
};

struct CompareResult {
    std::vector<ResourceComparison> resources;  // desired in sync order, then prune candidates
    std::vector<HookResource> hooks;            // in render order; Skip objects are left out
    bool synced = true;  // every desired object Synced and nothing requires pruning
    health::Status health = health::Status::Healthy;  // worst of the desired resources
    std::vector<std::string>
        sharedResourceWarnings;               // "apps/Deployment:ns/x is tracked by other-app"
    std::shared_ptr<const CompareMemo> memo;  // for the next compare
    bool reused = false;  // the memo's whole result: nothing compare() reads had changed
};

CompareResult compare(const CompareInput& in);

struct SyncRequest {
    bool prune = false;  // automated.prune or operation.sync.prune
    SyncOptions options;
    bool applyOutOfSyncOnly = false;  // options.applyOutOfSyncOnly (self-heal syncs use it too)
};

// One step of a sync. apply/prune hold indices into CompareResult::resources.
struct SyncStep {
    int wave = 0;
    std::vector<std::size_t> apply;
    std::vector<std::size_t> prune;
    std::vector<std::size_t> hooks;  // Sync hooks of this wave (CompareResult::hooks)
};

// Hooks of one phase and wave, created together and waited for before the next step.
struct HookStep {
    HookType phase = HookType::PreSync;
    int wave = 0;
    std::vector<std::size_t> hooks;  // indices into CompareResult::hooks
};

struct SyncPlan {
    // Namespaces and CustomResourceDefinitions, applied and waited for (Active/Established)
    // before the rest is dry-run.
    std::vector<std::size_t> bootstrap;
    std::vector<SyncStep> waves;         // ascending wave; within one, Argo CD's kind order
    std::vector<std::size_t> pruneLast;  // PruneLast=true: after every wave is healthy
    std::vector<std::size_t> skipped;    // owned by another app, or prune not allowed
    // Hooks by phase, ascending wave (Sync hooks are in `waves`).
    std::vector<HookStep> preSync, postSync, syncFail;
    std::vector<HookStep> postDelete;  // run when the Application is deleted
};

// Orders the sync: PreSync hooks, bootstrap objects, then waves (with their Sync hooks); without
// PruneLast a prune runs in the step of its live object's wave, after that step's applies.
// Prunes only when request.prune. PostSync and SyncFail hooks are planned for the end.
SyncPlan planSync(const CompareResult& compared, const SyncRequest& request);

// The apply payload for one desired object: with RespectIgnoreDifferences, the ignored fields
// are taken out (so another manager, e.g. an HPA on spec.replicas, keeps them).
json applyPayload(const json& desired, const std::shared_ptr<const json>& live,
                  const std::vector<diff::IgnoreRule>& ignore, bool respectIgnoreDifferences);

// What the Canary controller rewrites on its target Deployment: it scales it (to zero at rest,
// up during an analysis) and touches nothing else of it.
inline const std::vector<std::string> kCanaryControlledPointers = {"/spec/replicas"};
// What it rewrites on a target DaemonSet: the node selector that keeps its pods off every node
// while it is "scaled to zero" (canarycontroller::kScaleToZeroNodeSelector).
inline const std::vector<std::string> kCanaryControlledDaemonSetPointers = {
    "/spec/template/spec/nodeSelector/sluice.io~1scale-to-zero"};
// What it rewrites on the KEDA ScaledObject a Canary's autoscalerRef names: the pause that keeps
// KEDA from scaling the target up from zero at rest (an HPA it does not touch: it copies it).
inline const std::vector<std::string> kCanaryControlledScalerPointers = {
    "/metadata/annotations/autoscaling.keda.sh~1paused-replicas"};

// Whether obj is a Canary (sluice.io, or Flagger's flagger.app).
bool isCanary(const json& obj);
// One rule per Deployment a Canary targets (spec.targetRef, apps/v1 Deployment, the Canary's
// namespace), naming kCanaryControlledPointers, one per DaemonSet it targets, naming
// kCanaryControlledDaemonSetPointers, and one per ScaledObject its autoscalerRef names, naming
// kCanaryControlledScalerPointers. Objects that are not Canaries are skipped.
std::vector<diff::IgnoreRule> canaryTargetRules(const std::vector<const json*>& canaries);

// The apply payload with the fields `controlled` names handled as another controller's: a new
// object is created whole (git's replicas to start with); for an existing one the field is left
// out, unless `manager` still owns it in live (before the other controller first wrote it),
// where live's value is sent so that dropping it does not reset it to its default.
json controlledPayload(json payload, const std::shared_ptr<const json>& live,
                       const std::vector<diff::IgnoreRule>& controlled, const std::string& manager);

// Who made live drift from desired: the field managers other than `self` (from live
// metadata.managedFields) that own any of the differing fields, most recent first.
std::vector<std::string> driftManagers(const json& live, const diff::Result& differences,
                                       const std::string& self);

}  // namespace sluice::appengine
