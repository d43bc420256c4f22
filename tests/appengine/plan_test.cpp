#include "sluice/appengine/plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace sluice::appengine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::string kInstance = "web";

json obj(const std::string& apiVersion, const std::string& kind, const std::string& ns,
         const std::string& name, const json& annotations = json::object()) {
    json o = {{"apiVersion", apiVersion}, {"kind", kind}, {"metadata", {{"name", name}}}};
    if (!ns.empty()) o["metadata"]["namespace"] = ns;
    if (!annotations.empty()) o["metadata"]["annotations"] = annotations;
    return o;
}

json configMap(const std::string& name, const json& data,
               const json& annotations = json::object()) {
    json o = obj("v1", "ConfigMap", "prod", name, annotations);
    o["data"] = data;
    return o;
}

// The object as the prepared (tracked) copy `instance` would have applied.
json trackedBy(json o, const std::string& instance) {
    o["metadata"]["annotations"][kTrackingAnnotation] = trackingIdFor(instance, o).str();
    return o;
}

ScopeLookup builtinScopes() {
    return [](const std::string& apiVersion, const std::string& kind) -> std::optional<bool> {
        static const std::map<std::string, bool> kScopes = {
            {"v1/ConfigMap", true},
            {"v1/Secret", true},
            {"v1/Service", true},
            {"v1/ServiceAccount", true},
            {"v1/Namespace", false},
            {"apps/v1/Deployment", true},
            {"rbac.authorization.k8s.io/v1/ClusterRole", false},
            {"apiextensions.k8s.io/v1/CustomResourceDefinition", false},
            {"batch/v1/Job", true}};
        auto it = kScopes.find(apiVersion + "/" + kind);
        if (it == kScopes.end()) return std::nullopt;
        return it->second;
    };
}

// A fake cluster: live objects by key.
struct Cluster {
    std::map<ResourceKey, std::shared_ptr<const json>> objects;
    void put(const json& o) { objects[ResourceKey::of(o)] = std::make_shared<const json>(o); }
    std::function<std::shared_ptr<const json>(const ResourceKey&)> lookup() const {
        return [this](const ResourceKey& k) -> std::shared_ptr<const json> {
            auto it = objects.find(k);
            return it == objects.end() ? nullptr : it->second;
        };
    }
};

InventoryEntry entryOf(const json& o) {
    ResourceKey k = ResourceKey::of(o);
    std::string apiVersion = o["apiVersion"];
    auto slash = apiVersion.find('/');
    return {k.group, slash == std::string::npos ? apiVersion : apiVersion.substr(slash + 1), k.kind,
            k.ns, k.name};
}

std::vector<std::string> names(const CompareResult& c, const std::vector<size_t>& indices) {
    std::vector<std::string> out;
    for (size_t i : indices) out.push_back(c.resources[i].key.kind + "/" + c.resources[i].key.name);
    return out;
}

// Desired objects as CompareInput takes them.
std::shared_ptr<const std::vector<json>> objects(std::vector<json> desired) {
    return std::make_shared<const std::vector<json>>(std::move(desired));
}

const ResourceComparison* find(const CompareResult& c, const std::string& kind,
                               const std::string& name) {
    for (const auto& r : c.resources)
        if (r.key.kind == kind && r.key.name == name) return &r;
    return nullptr;
}

TEST(ResourceKey, OfAndStr) {
    ResourceKey k = ResourceKey::of(obj("apps/v1", "Deployment", "prod", "api"));
    EXPECT_EQ(k, (ResourceKey{"apps", "Deployment", "prod", "api"}));
    EXPECT_EQ(k.str(), "apps/Deployment:prod/api");
    EXPECT_EQ(ResourceKey::of(obj("v1", "Namespace", "", "prod")).str(), "Namespace:/prod");
}

TEST(Inventory, JsonRoundTripAndInvalidEntries) {
    InventoryEntry e{"apps", "v1", "Deployment", "prod", "api"};
    EXPECT_EQ(InventoryEntry::fromJson(e.toJson()), e);
    InventoryEntry core{"", "v1", "Namespace", "", "prod"};
    EXPECT_EQ(core.toJson(), json({{"version", "v1"}, {"kind", "Namespace"}, {"name", "prod"}}));
    EXPECT_EQ(InventoryEntry::fromJson(core.toJson()), core);
    json list = json::array({e.toJson(), json{{"kind", "X"}}, "junk", core.toJson()});
    EXPECT_THAT(parseInventory(list), ElementsAre(e, core));
    EXPECT_THAT(parseInventory(json::object()), IsEmpty());
    EXPECT_THAT(parseInventory(nullptr), IsEmpty());
}

TEST(ScopeViolations, NamespacedModeRefusesOtherNamespacesAndClusterKinds) {
    std::vector<json> prepared = {
        obj("v1", "ConfigMap", "apps", "a"), obj("v1", "ConfigMap", "web", "b"),
        obj("v1", "Secret", "web", "c"), obj("v1", "Namespace", "", "apps")};
    EXPECT_THAT(scopeViolations(prepared, ManagedScope{}), IsEmpty());
    EXPECT_THAT(scopeViolations(prepared, ManagedScope{{"apps"}, false}),
                ElementsAre("namespace \"web\" is not managed (--managed-namespaces)",
                            "cluster level Namespace \"apps\" can not be managed when in "
                            "namespaced mode"));
    EXPECT_THAT(scopeViolations(prepared, ManagedScope{{"apps", "web"}, true}), IsEmpty());
    EXPECT_THAT(scopeViolations(prepared, ManagedScope{{}, false}),
                ElementsAre("cluster level Namespace \"apps\" can not be managed when in "
                            "namespaced mode"));
}

TEST(PrepareDesired, NamespacesAndTracking) {
    std::vector<json> manifests = {configMap("a", {{"k", "v"}}),
                                   obj("v1", "Namespace", "ignored", "prod"),
                                   obj("v1", "ConfigMap", "other", "b")};
    PreparedObjects p = prepareDesired(manifests, {"a.yaml:1", "ns.yaml:1", "b.yaml:3"}, "dest",
                                       kInstance, builtinScopes());
    ASSERT_THAT(p.errors, IsEmpty());
    ASSERT_EQ(p.objects.size(), 3u);
    EXPECT_EQ(p.objects[0]["metadata"]["namespace"], "prod");      // kept
    EXPECT_FALSE(p.objects[1]["metadata"].contains("namespace"));  // cluster-scoped
    EXPECT_EQ(p.objects[2]["metadata"]["namespace"], "other");
    EXPECT_EQ(p.objects[0]["metadata"]["annotations"][kTrackingAnnotation],
              "web:/ConfigMap:prod/a");
    EXPECT_EQ(p.objects[1]["metadata"]["annotations"][kTrackingAnnotation], "web:/Namespace:/prod");
    for (const auto& o : p.objects) EXPECT_TRUE(isTrackedBy(o, kInstance));

    json noNs = obj("apps/v1", "Deployment", "", "api");
    p = prepareDesired({noNs}, {}, "dest", kInstance, builtinScopes());
    ASSERT_THAT(p.errors, IsEmpty());
    EXPECT_EQ(p.objects[0]["metadata"]["namespace"], "dest");
    EXPECT_EQ(p.objects[0]["metadata"]["annotations"][kTrackingAnnotation],
              "web:apps/Deployment:dest/api");
    // The input is not modified.
    EXPECT_FALSE(noNs["metadata"].contains("namespace"));
}

TEST(PrepareDesired, KindsFromCrdsInTheSameSet) {
    json crd =
        obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com");
    crd["spec"] = {{"group", "example.com"},
                   {"scope", "Namespaced"},
                   {"names", {{"kind", "Widget"}, {"plural", "widgets"}}}};
    json clusterCrd = crd;
    clusterCrd["metadata"]["name"] = "gadgets.example.com";
    clusterCrd["spec"]["scope"] = "Cluster";
    clusterCrd["spec"]["names"]["kind"] = "Gadget";
    PreparedObjects p = prepareDesired({obj("example.com/v1", "Widget", "", "w"), crd, clusterCrd,
                                        obj("example.com/v1", "Gadget", "x", "g")},
                                       {}, "dest", kInstance, builtinScopes());
    ASSERT_THAT(p.errors, IsEmpty());
    EXPECT_EQ(p.objects[0]["metadata"]["namespace"], "dest");
    EXPECT_FALSE(p.objects[3]["metadata"].contains("namespace"));

    p = prepareDesired({obj("example.com/v1", "Thing", "", "t")}, {"things.yaml:4"}, "dest",
                       kInstance, builtinScopes());
    ASSERT_EQ(p.errors.size(), 1u);
    EXPECT_THAT(p.errors[0], HasSubstr("things.yaml:4: unknown kind Thing"));
    EXPECT_THAT(p.objects, IsEmpty());
}

TEST(PrepareDesired, Errors) {
    json badWave = configMap("w", json::object(), {{kSyncWaveAnnotation, "soon"}});
    PreparedObjects p = prepareDesired(
        {configMap("a", json::object()), obj("v1", "ConfigMap", "prod", "a"),
         json{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", json::object()}},
         json{{"kind", "ConfigMap"}}, json::array(), obj("v1", "ConfigMap", "", "nons"), badWave},
        {"a.yaml:1", "b.yaml:7", "c.yaml:1", "d.yaml:1", "e.yaml:1", "f.yaml:1"}, "", kInstance,
        builtinScopes());
    ASSERT_EQ(p.errors.size(), 6u);
    EXPECT_THAT(p.errors[0], HasSubstr("b.yaml:7: duplicate resource ConfigMap:prod/a"));
    EXPECT_THAT(p.errors[0], HasSubstr("a.yaml:1"));
    EXPECT_THAT(p.errors[1], HasSubstr("c.yaml:1: ConfigMap: metadata.name: required"));
    EXPECT_THAT(p.errors[2], HasSubstr("d.yaml:1: apiVersion and kind are required"));
    EXPECT_THAT(p.errors[3], HasSubstr("e.yaml:1: not a Kubernetes object"));
    EXPECT_THAT(p.errors[4], HasSubstr("f.yaml:1: ConfigMap nons: no namespace"));
    // No source given for the seventh manifest: numbered instead.
    EXPECT_THAT(p.errors[5], HasSubstr("manifest #7: annotation sluice.io/sync-wave"));
    EXPECT_EQ(p.objects.size(), 1u);
}

// Prepared desired objects (namespace "prod").
std::vector<json> prepare(const std::vector<json>& manifests) {
    PreparedObjects p = prepareDesired(manifests, {}, "prod", kInstance, builtinScopes());
    EXPECT_THAT(p.errors, IsEmpty());
    return p.objects;
}

TEST(Compare, SyncedOutOfSyncMissing) {
    auto desired = prepare({configMap("same", {{"k", "v"}}), configMap("changed", {{"k", "new"}}),
                            configMap("absent", {{"k", "v"}})});
    Cluster cluster;
    cluster.put(desired[0]);
    json changed = desired[1];
    changed["data"]["k"] = "old";
    cluster.put(changed);

    CompareResult c = compare({kInstance, objects(desired), cluster.lookup(), {}, {}, "sluice"});
    ASSERT_EQ(c.resources.size(), 3u);
    EXPECT_EQ(find(c, "ConfigMap", "same")->state, SyncState::Synced);
    EXPECT_EQ(find(c, "ConfigMap", "changed")->state, SyncState::OutOfSync);
    EXPECT_EQ(find(c, "ConfigMap", "changed")->diff.differences.at(0).path, ".data.k");
    const ResourceComparison* absent = find(c, "ConfigMap", "absent");
    EXPECT_EQ(absent->state, SyncState::Missing);
    EXPECT_EQ(absent->health.status, health::Status::Missing);
    EXPECT_EQ(absent->live, nullptr);
    EXPECT_EQ(absent->version, "v1");
    EXPECT_FALSE(c.synced);
    EXPECT_EQ(c.health, health::Status::Missing);
    EXPECT_THAT(c.sharedResourceWarnings, IsEmpty());

    cluster.put(desired[1]);
    cluster.put(desired[2]);
    c = compare({kInstance, objects(desired), cluster.lookup(), {}, {}, "sluice"});
    EXPECT_TRUE(c.synced);
    EXPECT_EQ(c.health, health::Status::Healthy);
}

TEST(Compare, AMemoSkipsObjectsWhoseDesiredAndLiveVersionsAreUnchanged) {
    auto desired = prepare({configMap("a", {{"k", "v"}}), configMap("b", {{"k", "v"}})});
    Cluster cluster;
    for (auto o : desired) {
        o["metadata"]["resourceVersion"] = "10";
        cluster.put(o);
    }
    CompareInput in{kInstance, objects(desired), cluster.lookup(), {}, {}, "sluice"};
    in.desiredKey = "render-1";
    CompareResult first = compare(in);
    ASSERT_TRUE(first.synced);
    ASSERT_TRUE(first.memo);
    ASSERT_TRUE(first.memo->result);
    EXPECT_EQ(first.memo->result->resources.size(), 2u);
    EXPECT_FALSE(first.reused);

    // Live content changed behind an unchanged resourceVersion (never so in a real cluster):
    // the memo's conclusion is reused, which shows nothing was diffed again.
    json a = desired[0];
    a["data"]["k"] = "edited";
    a["metadata"]["resourceVersion"] = "10";
    cluster.put(a);
    in.live = cluster.lookup();
    in.memo = first.memo;
    CompareResult same = compare(in);
    EXPECT_TRUE(same.synced);
    EXPECT_TRUE(same.reused) << "nothing compare() reads changed: the whole result is reused";
    EXPECT_EQ(same.memo, first.memo);

    // Another object of the memo is gone from the cluster: looked up again, no longer whole.
    Cluster without = cluster;
    without.objects.erase(ResourceKey::of(desired[1]));
    in.live = without.lookup();
    CompareResult gone = compare(in);
    EXPECT_FALSE(gone.reused);
    EXPECT_EQ(find(gone, "ConfigMap", "b")->state, SyncState::Missing);
    EXPECT_TRUE(find(gone, "ConfigMap", "a")->state == SyncState::Synced)
        << "a's conclusion reused (same resourceVersion)";
    // A Canary appearing, or another inventory, also ends the whole reuse.
    in.live = cluster.lookup();
    in.inventory = {entryOf(desired[0])};
    EXPECT_FALSE(compare(in).reused);
    in.inventory = {};
    in.canaries = {std::make_shared<const json>(json{{"metadata", {{"uid", "u1"}}}})};
    EXPECT_FALSE(compare(in).reused);
    in.canaries = {};
    EXPECT_TRUE(compare(in).reused);

    // A new resourceVersion is diffed again.
    a["metadata"]["resourceVersion"] = "11";
    cluster.put(a);
    in.live = cluster.lookup();
    CompareResult second = compare(in);
    EXPECT_FALSE(second.synced);
    EXPECT_EQ(find(second, "ConfigMap", "a")->state, SyncState::OutOfSync);

    // Another desired state, or none named, is diffed again too.
    a["metadata"]["resourceVersion"] = "10";
    cluster.put(a);
    in.live = cluster.lookup();
    in.desiredKey = "render-2";
    EXPECT_FALSE(compare(in).synced);
    in.desiredKey = "";
    in.memo = first.memo;
    EXPECT_FALSE(compare(in).synced);
    // Other ignore rules than the memo's: diffed again (and here they hide the edit).
    in.desiredKey = "render-1";
    in.ignore = {diff::IgnoreRule{"", "ConfigMap", "", "", {"/data"}, {}}};
    EXPECT_TRUE(compare(in).synced);
}

TEST(Compare, IgnoreDifferencesApply) {
    json deploy = obj("apps/v1", "Deployment", "prod", "api");
    deploy["spec"] = {{"replicas", 2}};
    auto desired = prepare({deploy});
    Cluster cluster;
    json live = desired[0];
    live["spec"]["replicas"] = 5;
    cluster.put(live);
    CompareResult c = compare({kInstance, objects(desired), cluster.lookup(), {}, {}, "sluice"});
    EXPECT_FALSE(c.synced);
    diff::IgnoreRule rule;
    rule.group = "apps";
    rule.kind = "Deployment";
    rule.jsonPointers = {"/spec/replicas"};
    c = compare({kInstance, objects(desired), cluster.lookup(), {}, {rule}, "sluice"});
    EXPECT_TRUE(c.synced);
}

TEST(Compare, DesiredInSyncOrderThenPruneCandidates) {
    auto desired =
        prepare({obj("apps/v1", "Deployment", "prod", "b"),
                 configMap("late", json::object(), {{kSyncWaveAnnotation, "2"}}),
                 obj("v1", "Service", "prod", "a"), obj("apps/v1", "Deployment", "prod", "a"),
                 configMap("early", json::object(), {{kArgoSyncWaveAnnotation, "-1"}})});
    Cluster cluster;
    json stale = trackedBy(configMap("stale", json::object()), kInstance);
    cluster.put(stale);
    CompareResult c =
        compare({kInstance, objects(desired), cluster.lookup(), {entryOf(stale)}, {}, "sluice"});
    std::vector<std::string> order;
    for (const auto& r : c.resources) order.push_back(r.key.kind + "/" + r.key.name);
    EXPECT_THAT(order, ElementsAre("ConfigMap/early", "Service/a", "Deployment/a", "Deployment/b",
                                   "ConfigMap/late", "ConfigMap/stale"));
    EXPECT_EQ(c.resources[0].wave, -1);
    EXPECT_EQ(c.resources[4].wave, 2);
}

TEST(Compare, PruneCandidates) {
    auto desired = prepare({configMap("kept", json::object())});
    Cluster cluster;
    cluster.put(desired[0]);
    json ours = trackedBy(configMap("ours", json::object()), kInstance);
    json notInInventory = trackedBy(configMap("not-in-inventory", json::object()), kInstance);
    json takenOver = trackedBy(configMap("taken-over", json::object()), "other-app");
    json untracked = configMap("untracked", json::object());
    json copied =
        configMap("copied", json::object(), {{kTrackingAnnotation, "web:/ConfigMap:prod/ours"}});
    json protectedObj = trackedBy(
        configMap("protected", json::object(), {{kArgoSyncOptionsAnnotation, "Prune=false"}}),
        kInstance);
    for (const auto& o : {ours, notInInventory, takenOver, untracked, copied, protectedObj})
        cluster.put(o);
    json gone = trackedBy(configMap("gone", json::object()), kInstance);  // not in the cluster

    std::vector<InventoryEntry> inventory = {
        entryOf(desired[0]), entryOf(ours),         entryOf(takenOver), entryOf(untracked),
        entryOf(copied),     entryOf(protectedObj), entryOf(gone),      entryOf(ours)};
    CompareResult c =
        compare({kInstance, objects(desired), cluster.lookup(), inventory, {}, "sluice"});
    std::vector<std::string> pruned;
    for (const auto& r : c.resources)
        if (r.requiresPruning) pruned.push_back(r.key.name);
    EXPECT_THAT(pruned, ElementsAre("ours", "protected"));
    const ResourceComparison* p = find(c, "ConfigMap", "protected");
    EXPECT_TRUE(p->pruneDisabled);
    EXPECT_FALSE(p->desired);
    EXPECT_EQ(p->state, SyncState::OutOfSync);
    EXPECT_EQ(p->version, "v1");
    EXPECT_FALSE(find(c, "ConfigMap", "ours")->pruneDisabled);
    EXPECT_FALSE(c.synced);
    // Prune candidates do not count towards the Application's health.
    EXPECT_EQ(c.health, health::Status::Healthy);

    SyncPlan plan = planSync(c, {true, {}, false});
    ASSERT_EQ(plan.waves.size(), 1u);
    EXPECT_THAT(names(c, plan.waves[0].prune), ElementsAre("ConfigMap/ours"));
    EXPECT_THAT(names(c, plan.skipped), ElementsAre("ConfigMap/protected"));

    // Without prune permission nothing is deleted; both are reported as skipped.
    plan = planSync(c, {false, {}, false});
    for (const auto& step : plan.waves) EXPECT_THAT(step.prune, IsEmpty());
    EXPECT_THAT(names(c, plan.skipped), ElementsAre("ConfigMap/ours", "ConfigMap/protected"));
}

TEST(Compare, ObjectTrackedByAnotherAppIsNotTakenOver) {
    auto desired = prepare({configMap("shared", {{"k", "v"}}), configMap("adopt", {{"k", "v"}})});
    Cluster cluster;
    json theirs = trackedBy(configMap("shared", {{"k", "v"}}), "team-b_api");
    cluster.put(theirs);
    cluster.put(configMap("adopt", {{"k", "v"}}));  // created by hand, tracked by nobody
    CompareResult c = compare({kInstance, objects(desired), cluster.lookup(), {}, {}, "sluice"});
    const ResourceComparison* shared = find(c, "ConfigMap", "shared");
    EXPECT_EQ(shared->ownedBy, "team-b_api");
    EXPECT_EQ(shared->state, SyncState::OutOfSync);
    EXPECT_THAT(c.sharedResourceWarnings,
                ElementsAre("ConfigMap:prod/shared is tracked by team-b_api"));
    EXPECT_FALSE(c.synced);
    const ResourceComparison* adopt = find(c, "ConfigMap", "adopt");
    EXPECT_EQ(adopt->ownedBy, "");
    EXPECT_EQ(adopt->state, SyncState::OutOfSync);  // our tracking id is not there yet

    SyncPlan plan = planSync(c, {true, {}, false});
    EXPECT_THAT(names(c, plan.skipped), ElementsAre("ConfigMap/shared"));
    ASSERT_EQ(plan.waves.size(), 1u);
    EXPECT_THAT(names(c, plan.waves[0].apply), ElementsAre("ConfigMap/adopt"));

    // Even an otherwise identical copy is not "synced" while another app owns it.
    cluster.put(*adopt->desired);
    c = compare({kInstance, objects({desired[0]}), cluster.lookup(), {}, {}, "sluice"});
    EXPECT_FALSE(c.synced);
}

TEST(PlanSync, BootstrapWavesKindOrderAndPrunes) {
    json crd =
        obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com");
    crd["spec"] = {
        {"group", "example.com"}, {"scope", "Namespaced"}, {"names", {{"kind", "Widget"}}}};
    auto desired = prepare(
        {obj("example.com/v1", "Widget", "", "w"), obj("apps/v1", "Deployment", "prod", "api"),
         obj("v1", "Service", "prod", "api"), obj("v1", "ServiceAccount", "prod", "api"), crd,
         obj("v1", "Namespace", "", "prod"),
         obj("batch/v1", "Job", "prod", "migrate", {{kSyncWaveAnnotation, "-1"}}),
         obj("apps/v1", "Deployment", "prod", "worker", {{kSyncWaveAnnotation, "1"}}),
         obj("v1", "Secret", "prod", "creds", {{kSyncWaveAnnotation, "1"}})});
    Cluster cluster;
    json oldCm = trackedBy(configMap("old", json::object()), kInstance);
    json oldSa = trackedBy(obj("v1", "ServiceAccount", "prod", "old"), kInstance);
    json oldLate =
        trackedBy(configMap("old-late", json::object(), {{kSyncWaveAnnotation, "5"}}), kInstance);
    for (const auto& o : {oldCm, oldSa, oldLate}) cluster.put(o);
    CompareResult c = compare({kInstance,
                               objects(desired),
                               cluster.lookup(),
                               {entryOf(oldCm), entryOf(oldSa), entryOf(oldLate)},
                               {},
                               "sluice"});
    SyncPlan plan = planSync(c, {true, {}, false});
    EXPECT_THAT(names(c, plan.bootstrap),
                ElementsAre("Namespace/prod", "CustomResourceDefinition/widgets.example.com"));
    ASSERT_EQ(plan.waves.size(), 4u);
    EXPECT_EQ(plan.waves[0].wave, -1);
    EXPECT_THAT(names(c, plan.waves[0].apply), ElementsAre("Job/migrate"));
    EXPECT_EQ(plan.waves[1].wave, 0);
    EXPECT_THAT(names(c, plan.waves[1].apply),
                ElementsAre("ServiceAccount/api", "Service/api", "Deployment/api", "Widget/w"));
    // Deleted in reverse kind order: the ConfigMap before the ServiceAccount.
    EXPECT_THAT(names(c, plan.waves[1].prune), ElementsAre("ConfigMap/old", "ServiceAccount/old"));
    EXPECT_EQ(plan.waves[2].wave, 1);
    EXPECT_THAT(names(c, plan.waves[2].apply), ElementsAre("Secret/creds", "Deployment/worker"));
    EXPECT_THAT(plan.waves[2].prune, IsEmpty());
    EXPECT_EQ(plan.waves[3].wave, 5);  // a wave with only a prune, from the live object
    EXPECT_THAT(plan.waves[3].apply, IsEmpty());
    EXPECT_THAT(names(c, plan.waves[3].prune), ElementsAre("ConfigMap/old-late"));
    EXPECT_THAT(plan.pruneLast, IsEmpty());
    EXPECT_THAT(plan.skipped, IsEmpty());
}

TEST(PlanSync, PruneLast) {
    auto desired = prepare({configMap("kept", json::object())});
    Cluster cluster;
    json a = trackedBy(configMap("a", json::object()), kInstance);
    json b = trackedBy(configMap("b", json::object(), {{kSyncWaveAnnotation, "3"}}), kInstance);
    json c1 = trackedBy(
        configMap("c", json::object(), {{kSyncOptionsAnnotation, "PruneLast=true"}}), kInstance);
    for (const auto& o : {a, b, c1}) cluster.put(o);
    CompareResult c = compare({kInstance,
                               objects(desired),
                               cluster.lookup(),
                               {entryOf(a), entryOf(b), entryOf(c1)},
                               {},
                               "sluice"});

    SyncRequest request{true, {}, false};
    SyncPlan plan = planSync(c, request);
    // Only the object asking for PruneLast itself waits for the end.
    EXPECT_THAT(names(c, plan.pruneLast), ElementsAre("ConfigMap/c"));

    request.options.pruneLast = true;
    plan = planSync(c, request);
    EXPECT_THAT(names(c, plan.pruneLast), ElementsAre("ConfigMap/b", "ConfigMap/c", "ConfigMap/a"));
    ASSERT_EQ(plan.waves.size(), 1u);
    EXPECT_THAT(plan.waves[0].prune, IsEmpty());
    EXPECT_THAT(names(c, plan.waves[0].apply), ElementsAre("ConfigMap/kept"));
}

TEST(PlanSync, ApplyOutOfSyncOnly) {
    auto desired = prepare({configMap("same", {{"k", "v"}}), configMap("changed", {{"k", "v"}}),
                            configMap("absent", {{"k", "v"}}), obj("v1", "Namespace", "", "prod")});
    Cluster cluster;
    cluster.put(desired[0]);
    cluster.put(desired[3]);
    json changed = desired[1];
    changed["data"]["k"] = "drifted";
    cluster.put(changed);
    CompareResult c = compare({kInstance, objects(desired), cluster.lookup(), {}, {}, "sluice"});

    SyncPlan all = planSync(c, {false, {}, false});
    EXPECT_THAT(names(c, all.bootstrap), ElementsAre("Namespace/prod"));
    ASSERT_EQ(all.waves.size(), 1u);
    EXPECT_THAT(names(c, all.waves[0].apply),
                ElementsAre("ConfigMap/absent", "ConfigMap/changed", "ConfigMap/same"));

    SyncPlan some = planSync(c, {false, {}, true});
    EXPECT_THAT(some.bootstrap, IsEmpty());
    ASSERT_EQ(some.waves.size(), 1u);
    EXPECT_THAT(names(c, some.waves[0].apply),
                ElementsAre("ConfigMap/absent", "ConfigMap/changed"));
    EXPECT_THAT(some.skipped, IsEmpty());
}

TEST(PlanSync, NothingToDo) {
    CompareResult empty = compare({kInstance, objects({}), Cluster().lookup(), {}, {}, "sluice"});
    EXPECT_TRUE(empty.synced);
    EXPECT_EQ(empty.health, health::Status::Healthy);
    SyncPlan plan = planSync(empty, {true, {}, false});
    EXPECT_THAT(plan.bootstrap, IsEmpty());
    EXPECT_THAT(plan.waves, IsEmpty());
    EXPECT_THAT(plan.pruneLast, IsEmpty());
    EXPECT_THAT(plan.skipped, IsEmpty());
}

TEST(ApplyPayload, RespectIgnoreDifferences) {
    json deploy = obj("apps/v1", "Deployment", "prod", "api");
    deploy["spec"] = {{"replicas", 2}, {"paused", nullptr}};
    diff::IgnoreRule rule;
    rule.kind = "Deployment";
    rule.jsonPointers = {"/spec/replicas"};
    auto live = std::make_shared<const json>(deploy);

    json kept = applyPayload(deploy, live, {rule}, false);
    EXPECT_EQ(kept["spec"]["replicas"], 2);
    EXPECT_FALSE(kept["spec"].contains("paused"));  // nulls are not sent

    json respected = applyPayload(deploy, live, {rule}, true);
    EXPECT_FALSE(respected["spec"].contains("replicas"));
    // A new object is created whole.
    json created = applyPayload(deploy, nullptr, {rule}, true);
    EXPECT_EQ(created["spec"]["replicas"], 2);

    json secret = obj("v1", "Secret", "prod", "s");
    secret["stringData"] = {{"password", "hunter2"}};
    json payload = applyPayload(secret, nullptr, {}, false);
    EXPECT_EQ(payload["data"]["password"], "aHVudGVyMg==");
    EXPECT_FALSE(payload.contains("stringData"));
}

json deployment(const std::string& image, int replicas) {
    json d = obj("apps/v1", "Deployment", "prod", "api");
    d["spec"] = json::parse(R"({"template":{"spec":{"containers":[{"name":"app"}]}}})");
    d["spec"]["replicas"] = replicas;
    d["spec"]["template"]["spec"]["containers"][0]["image"] = image;
    return d;
}

json deploymentWithManagers() {
    json d = deployment("app:hotfix", 5);
    auto fields = [](const char* text) { return json::parse(text); };
    d["metadata"]["managedFields"] =
        json::array({{{"manager", "sluice"},
                      {"operation", "Apply"},
                      {"apiVersion", "apps/v1"},
                      {"time", "2024-05-01T10:00:00Z"},
                      {"fieldsType", "FieldsV1"},
                      {"fieldsV1", fields(R"({"f:spec":{"f:template":{"f:spec":{"f:containers":{
              "k:{\"name\":\"app\"}":{".":{},"f:name":{}}}}}}})")}},
                     {{"manager", "hpa-controller"},
                      {"operation", "Update"},
                      {"apiVersion", "apps/v1"},
                      {"time", "2024-05-01T11:00:00Z"},
                      {"fieldsType", "FieldsV1"},
                      {"fieldsV1", fields(R"({"f:spec":{"f:replicas":{}}})")}},
                     {{"manager", "kubectl-edit"},
                      {"operation", "Update"},
                      {"apiVersion", "apps/v1"},
                      {"time", "2024-05-01T12:00:00Z"},
                      {"fieldsType", "FieldsV1"},
                      {"fieldsV1", fields(R"({"f:spec":{"f:template":{"f:spec":{"f:containers":{
              "k:{\"name\":\"app\"}":{"f:image":{}}}}}}})")}},
                     {{"manager", "labeler"},
                      {"operation", "Update"},
                      {"apiVersion", "apps/v1"},
                      {"time", "2024-05-01T13:00:00Z"},
                      {"fieldsType", "FieldsV1"},
                      {"fieldsV1", fields(R"({"f:metadata":{"f:labels":{"f:team":{}}}})")}}});
    return d;
}

TEST(DriftManagers, WhoChangedTheDifferingFields) {
    json live = deploymentWithManagers();
    json desired = deployment("app:1.0", 5);
    diff::Result d = diff::compare(desired, live);
    ASSERT_TRUE(d.modified);
    EXPECT_THAT(driftManagers(live, d, "sluice"), ElementsAre("kubectl-edit"));

    desired["spec"]["replicas"] = 2;
    d = diff::compare(desired, live);
    EXPECT_THAT(driftManagers(live, d, "sluice"), ElementsAre("kubectl-edit", "hpa-controller"));

    // Our own entry is never blamed, even when it co-owns the list item.
    EXPECT_THAT(driftManagers(live, d, "kubectl-edit"), ElementsAre("hpa-controller"));

    desired["spec"]["template"]["spec"]["containers"][0]["image"] = "app:hotfix";
    desired["spec"]["replicas"] = 5;
    EXPECT_THAT(driftManagers(live, diff::compare(desired, live), "sluice"), IsEmpty());
}

TEST(DriftManagers, WholeSubtreeDifferenceMatchesOwnersBelowIt) {
    json live = deploymentWithManagers();
    diff::Result d;
    d.modified = true;
    d.differences.push_back({".spec.template", json::object(), json::object()});
    EXPECT_THAT(driftManagers(live, d, "sluice"), ElementsAre("kubectl-edit"));
    d.differences = {{".spec.rep", json(1), json(2)}};  // a prefix of a name is not a parent
    EXPECT_THAT(driftManagers(live, d, "sluice"), IsEmpty());
    d.differences = {{".metadata.labels.team", json("a"), json("b")}};
    EXPECT_THAT(driftManagers(live, d, "sluice"), ElementsAre("labeler"));
    EXPECT_THAT(driftManagers(live, diff::Result{}, "sluice"), IsEmpty());
}

// --- A Deployment a Canary targets: the Canary controller scales it, the Application must not
// undo that.

json canaryFor(const std::string& ns, const std::string& target,
               const std::string& apiVersion = "sluice.io/v1alpha1") {
    json c = obj(apiVersion, "Canary", ns, target);
    c["spec"]["targetRef"] = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", target}};
    return c;
}

// A live Deployment whose spec.replicas `replicasManager` last wrote (by Update, as the Canary
// controller's merge patch does, or by Apply), everything else applied by "sluice".
json liveScaledBy(json d, int replicas, const std::string& replicasManager,
                  const std::string& operation = "Update") {
    d["spec"]["replicas"] = replicas;
    auto fields = [](const char* text) { return json::parse(text); };
    d["metadata"]["managedFields"] =
        json::array({{{"manager", "sluice"},
                      {"operation", "Apply"},
                      {"apiVersion", "apps/v1"},
                      {"time", "2024-05-01T10:00:00Z"},
                      {"fieldsType", "FieldsV1"},
                      {"fieldsV1", fields(R"({"f:spec":{"f:template":{"f:spec":{"f:containers":{
              "k:{\"name\":\"app\"}":{".":{},"f:name":{},"f:image":{}}}}}}})")}},
                     {{"manager", replicasManager},
                      {"operation", operation},
                      {"apiVersion", "apps/v1"},
                      {"time", "2024-05-01T11:00:00Z"},
                      {"fieldsType", "FieldsV1"},
                      {"fieldsV1", fields(R"({"f:spec":{"f:replicas":{}}})")}}});
    return d;
}

TEST(CanaryTargets, RulesNameTheTargetDeploymentsReplicasOnly) {
    json other = canaryFor("prod", "worker");
    other["spec"]["targetRef"]["kind"] = "StatefulSet";
    json noName = canaryFor("prod", "x");
    noName["spec"]["targetRef"].erase("name");
    json notACanary = obj("v1", "ConfigMap", "prod", "api");
    notACanary["spec"]["targetRef"] = {{"kind", "Deployment"}, {"name", "api"}};
    json api = canaryFor("prod", "api");
    json apiAgain = canaryFor("prod", "api", "flagger.app/v1beta1");  // the same target twice
    json web = canaryFor("staging", "web", "flagger.app/v1beta1");
    web["spec"]["targetRef"].erase("apiVersion");  // apps/v1 by default
    auto rules = canaryTargetRules({&api, &other, &noName, &notACanary, &apiAgain, &web, nullptr});
    ASSERT_EQ(rules.size(), 2u);
    EXPECT_EQ(rules[0].group, "apps");
    EXPECT_EQ(rules[0].kind, "Deployment");
    EXPECT_EQ(rules[0].ns, "prod");
    EXPECT_EQ(rules[0].name, "api");
    EXPECT_THAT(rules[0].jsonPointers, ElementsAre("/spec/replicas"));
    EXPECT_EQ(rules[1].ns, "staging");
    EXPECT_EQ(rules[1].name, "web");
    EXPECT_TRUE(isCanary(api));
    EXPECT_TRUE(isCanary(apiAgain));
    EXPECT_FALSE(isCanary(notACanary));
}

TEST(CanaryTargets, ScaledTargetIsSyncedWhenGitOrTheClusterHoldsTheCanary) {
    const json desired = trackedBy(deployment("app:1", 3), kInstance);
    Cluster cluster;
    cluster.put(liveScaledBy(desired, 0, "sluice-canary"));

    // No Canary: the scale-down is drift.
    CompareResult alone =
        compare({kInstance, objects({desired}), cluster.lookup(), {}, {}, "sluice"});
    ASSERT_EQ(alone.resources.size(), 1u);
    EXPECT_EQ(alone.resources[0].state, SyncState::OutOfSync);
    EXPECT_THAT(alone.resources[0].controlled, IsEmpty());

    // The Canary in git (tracked like the rest).
    const json canary = trackedBy(canaryFor("prod", "api"), kInstance);
    cluster.put(canary);
    CompareResult fromGit =
        compare({kInstance, objects({desired, canary}), cluster.lookup(), {}, {}, "sluice"});
    EXPECT_TRUE(fromGit.synced);
    const ResourceComparison& target = fromGit.resources[0];
    ASSERT_EQ(target.key.kind, "Deployment");
    EXPECT_EQ(target.state, SyncState::Synced);
    ASSERT_EQ(target.controlled.size(), 1u);
    EXPECT_EQ(target.controlled[0].name, "api");

    // The Canary only in the cluster.
    CompareInput in{kInstance, objects({desired}), cluster.lookup(), {}, {}, "sluice"};
    in.canaries = {std::make_shared<const json>(canaryFor("prod", "api"))};
    CompareResult fromCluster = compare(in);
    EXPECT_TRUE(fromCluster.synced);
    EXPECT_EQ(fromCluster.resources[0].controlled.size(), 1u);

    // A Canary of another namespace or Deployment changes nothing.
    in.canaries = {std::make_shared<const json>(canaryFor("staging", "api")),
                   std::make_shared<const json>(canaryFor("prod", "web"))};
    EXPECT_FALSE(compare(in).synced);

    // Only the replicas are the Canary's: a changed image is still drift.
    Cluster edited;
    json live = liveScaledBy(desired, 0, "sluice-canary");
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "app:hotfix";
    edited.put(live);
    edited.put(canary);
    CompareResult drift =
        compare({kInstance, objects({desired, canary}), edited.lookup(), {}, {}, "sluice"});
    ASSERT_EQ(drift.resources[0].key.kind, "Deployment");
    EXPECT_EQ(drift.resources[0].state, SyncState::OutOfSync);
    ASSERT_EQ(drift.resources[0].diff.differences.size(), 1u);
    EXPECT_THAT(drift.resources[0].diff.differences[0].path, HasSubstr("image"));
}

// A DaemonSet target is "scaled to zero" by a node selector no node has: that entry is the
// Canary's, the rest of the DaemonSet git's.
TEST(CanaryTargets, ADaemonSetTargetsScaleToZeroSelectorIsTheCanarys) {
    json desired = deployment("app:1", 1);
    desired["kind"] = "DaemonSet";
    desired["spec"].erase("replicas");
    desired["spec"]["template"]["spec"]["nodeSelector"] = {{"kubernetes.io/os", "linux"}};
    desired = trackedBy(desired, kInstance);
    json canary = canaryFor("prod", "api");
    canary["spec"]["targetRef"]["kind"] = "DaemonSet";
    canary = trackedBy(canary, kInstance);

    const auto rules = canaryTargetRules({&canary});
    ASSERT_EQ(rules.size(), 1u);
    EXPECT_EQ(rules[0].kind, "DaemonSet");
    EXPECT_EQ(rules[0].name, "api");
    EXPECT_THAT(rules[0].jsonPointers,
                ElementsAre("/spec/template/spec/nodeSelector/sluice.io~1scale-to-zero"));

    json live = desired;
    live["spec"]["template"]["spec"]["nodeSelector"]["sluice.io/scale-to-zero"] = "true";
    Cluster cluster;
    cluster.put(live);
    cluster.put(canary);
    CompareResult withCanary =
        compare({kInstance, objects({desired, canary}), cluster.lookup(), {}, {}, "sluice"});
    EXPECT_TRUE(withCanary.synced);

    // Any other node selector is still git's.
    Cluster edited;
    live["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/os"] = "windows";
    edited.put(live);
    edited.put(canary);
    CompareResult drift =
        compare({kInstance, objects({desired, canary}), edited.lookup(), {}, {}, "sluice"});
    EXPECT_FALSE(drift.synced);
}

TEST(CanaryTargets, GeneratedObjectsAreNeverPruned) {
    // What the Canary controller makes from tracked objects: the primary (annotations copied
    // from the target without the tracking id), Services, and the NGINX canary Ingress, which
    // copies every annotation of the source Ingress, tracking id included. A tracking id names
    // the object it was written for, so none of them is ours, even if an inventory listed it.
    const json target = trackedBy(deployment("app:1", 0), kInstance);
    json primary = deployment("app:1", 2);
    primary["metadata"]["name"] = "api-primary";
    primary["metadata"]["annotations"] = {{"team", "payments"}};
    json service = obj("v1", "Service", "prod", "api-canary");
    const json source = trackedBy(obj("networking.k8s.io/v1", "Ingress", "prod", "api"), kInstance);
    json canaryIngress = source;
    canaryIngress["metadata"]["name"] = "api-canary";
    canaryIngress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"] = "true";
    Cluster cluster;
    for (const json& o : {target, primary, service, source, canaryIngress}) cluster.put(o);
    EXPECT_FALSE(isTrackedBy(canaryIngress, kInstance));
    EXPECT_FALSE(isTrackedBy(primary, kInstance));

    std::vector<InventoryEntry> inventory = {entryOf(target), entryOf(source), entryOf(primary),
                                             entryOf(service), entryOf(canaryIngress)};
    CompareResult c =
        compare({kInstance, objects({target, source}), cluster.lookup(), inventory, {}, "sluice"});
    for (const auto& r : c.resources) {
        EXPECT_FALSE(r.requiresPruning) << r.key.str();
        EXPECT_TRUE(r.desired) << r.key.str() << " is not a prune candidate";
    }
    EXPECT_THAT(planSync(c, {true, {}, false}).waves.front().prune, IsEmpty());
}

TEST(CanaryTargets, ApplyPayloadLeavesTheReplicasToTheCanary) {
    const json desired = trackedBy(deployment("app:2", 3), kInstance);
    const json canary = canaryFor("prod", "api");
    const auto rules = canaryTargetRules({&canary});

    // Scaled by the Canary controller: not in the payload, so "sluice" never owns it again.
    auto scaled = std::make_shared<const json>(liveScaledBy(desired, 0, "sluice-canary"));
    json payload =
        controlledPayload(applyPayload(desired, scaled, {}, false), scaled, rules, "sluice");
    EXPECT_FALSE(payload["spec"].contains("replicas"));
    EXPECT_EQ(payload["spec"]["template"]["spec"]["containers"][0]["image"], "app:2");

    // Still ours (the Canary has not scaled it yet): live's value is kept, so leaving the field
    // out does not reset it to the default of one replica.
    auto ours = std::make_shared<const json>(liveScaledBy(desired, 3, "sluice", "Apply"));
    payload = controlledPayload(applyPayload(desired, ours, {}, false), ours, rules, "sluice");
    EXPECT_EQ(payload["spec"]["replicas"], 3);

    // A new target is created whole, git's replicas to start with.
    payload =
        controlledPayload(applyPayload(desired, nullptr, {}, false), nullptr, rules, "sluice");
    EXPECT_EQ(payload["spec"]["replicas"], 3);

    // Other objects keep their replicas.
    json other = desired;
    other["metadata"]["name"] = "web";
    auto otherLive = std::make_shared<const json>(liveScaledBy(other, 0, "sluice-canary"));
    payload =
        controlledPayload(applyPayload(other, otherLive, {}, false), otherLive, rules, "sluice");
    EXPECT_EQ(payload["spec"]["replicas"], 3);
}

TEST(CanaryTargets, TheCanarysPauseOnItsScaledObjectIsNotDrift) {
    json canary = canaryFor("prod", "api");
    canary["spec"]["autoscalerRef"] = {
        {"apiVersion", "keda.sh/v1alpha1"}, {"kind", "ScaledObject"}, {"name", "api-so"}};
    json hpaCanary = canaryFor("prod", "web");
    hpaCanary["spec"]["autoscalerRef"] = {
        {"apiVersion", "autoscaling/v2"}, {"kind", "HorizontalPodAutoscaler"}, {"name", "web"}};
    const auto rules = canaryTargetRules({&canary, &hpaCanary, &canary});
    // The two target Deployments, and the ScaledObject once; an HPA is only copied, never
    // written, so it needs no rule.
    ASSERT_EQ(rules.size(), 3u);
    EXPECT_EQ(rules[0].group, "keda.sh");
    EXPECT_EQ(rules[0].kind, "ScaledObject");
    EXPECT_EQ(rules[0].ns, "prod");
    EXPECT_EQ(rules[0].name, "api-so");
    EXPECT_THAT(rules[0].jsonPointers,
                ElementsAre("/metadata/annotations/autoscaling.keda.sh~1paused-replicas"));
    EXPECT_EQ(rules[1].name, "api");
    EXPECT_EQ(rules[2].name, "web");

    // Git's ScaledObject has no pause; the live one was paused by the Canary controller: the
    // apply leaves the annotation to it.
    json desired = obj("keda.sh/v1alpha1", "ScaledObject", "prod", "api-so", {{"team", "a"}});
    desired["spec"] = {{"scaleTargetRef", {{"name", "api"}}}};
    json live = desired;
    live["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"] = "0";
    live["metadata"]["managedFields"] = json::array(
        {{{"manager", "sluice-canary"},
          {"operation", "Update"},
          {"apiVersion", "keda.sh/v1alpha1"},
          {"fieldsType", "FieldsV1"},
          {"fieldsV1",
           {{"f:metadata",
             {{"f:annotations", {{"f:autoscaling.keda.sh/paused-replicas", json::object()}}}}}}}}});
    auto liveObj = std::make_shared<const json>(live);
    json payload =
        controlledPayload(applyPayload(desired, liveObj, {}, false), liveObj, rules, "sluice");
    EXPECT_FALSE(
        payload["metadata"]["annotations"].contains("autoscaling.keda.sh/paused-replicas"));
    EXPECT_EQ(payload["metadata"]["annotations"]["team"], "a");
}

}  // namespace
}  // namespace sluice::appengine
