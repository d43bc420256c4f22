#include "sluice/diff/diff.h"

#include <gtest/gtest.h>

using nlohmann::json;
using sluice::diff::compare;
using sluice::diff::IgnoreRule;
using sluice::diff::parseQuantity;

namespace {

json deploymentManifest() {
    return json::parse(R"({
      "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
      "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
          "metadata": {"labels": {"app": "web"}},
          "spec": {"containers": [{
            "name": "web", "image": "web:1",
            "ports": [{"containerPort": 8080}],
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}
          }]}
        }
      }})");
}

// What the API server returns for the manifest: defaults filled in, server fields added,
// quantities rewritten in canonical form.
json liveFrom(const json& manifest) {
    json live = manifest;
    live["metadata"]["uid"] = "u-1";
    live["metadata"]["resourceVersion"] = "42";
    live["metadata"]["generation"] = 1;
    live["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z";
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1";
    live["spec"]["strategy"] = {{"type", "RollingUpdate"}};
    live["spec"]["revisionHistoryLimit"] = 10;
    auto& c = live["spec"]["template"]["spec"]["containers"][0];
    c["ports"][0]["protocol"] = "TCP";
    c["imagePullPolicy"] = "IfNotPresent";
    c["terminationMessagePath"] = "/dev/termination-log";
    c["resources"]["requests"]["cpu"] = "0.5";
    c["resources"]["requests"]["memory"] = "1024Mi";
    live["spec"]["template"]["spec"]["restartPolicy"] = "Always";
    live["status"] = {{"replicas", 2}, {"readyReplicas", 2}};
    return live;
}

}  // namespace

TEST(Quantity, ParsesKubernetesForms) {
    EXPECT_DOUBLE_EQ(static_cast<double>(*parseQuantity("500m")), 0.5);
    EXPECT_DOUBLE_EQ(static_cast<double>(*parseQuantity("1Gi")), 1073741824.0);
    EXPECT_DOUBLE_EQ(static_cast<double>(*parseQuantity("1024Mi")), 1073741824.0);
    EXPECT_DOUBLE_EQ(static_cast<double>(*parseQuantity("2e3")), 2000.0);
    EXPECT_DOUBLE_EQ(static_cast<double>(*parseQuantity("1.5k")), 1500.0);
    EXPECT_DOUBLE_EQ(static_cast<double>(*parseQuantity(".5")), 0.5);
    EXPECT_DOUBLE_EQ(static_cast<double>(*parseQuantity("-2")), -2.0);
    EXPECT_FALSE(parseQuantity("1.5.3"));
    EXPECT_FALSE(parseQuantity("e3"));
    EXPECT_FALSE(parseQuantity("1e"));
    EXPECT_FALSE(parseQuantity("web:1"));
    EXPECT_FALSE(parseQuantity("1Gb"));
    EXPECT_FALSE(parseQuantity(""));
}

TEST(Diff, DefaultedServerFieldsAndEquivalentValuesAreInSync) {
    auto manifest = deploymentManifest();
    auto r = compare(manifest, liveFrom(manifest));
    EXPECT_FALSE(r.modified) << r.differences.front().path;
}

TEST(Diff, ChangedFieldIsReportedWithItsPath) {
    auto manifest = deploymentManifest();
    auto live = liveFrom(manifest);
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "web:0";
    auto r = compare(manifest, live);
    ASSERT_TRUE(r.modified);
    ASSERT_EQ(r.differences.size(), 1u);
    EXPECT_EQ(r.differences[0].path, ".spec.template.spec.containers[name=web].image");
    EXPECT_EQ(*r.differences[0].desired, "web:1");
    EXPECT_EQ(*r.differences[0].live, "web:0");
}

TEST(Diff, ContainersMatchByNameNotPosition) {
    auto manifest = deploymentManifest();
    manifest["spec"]["template"]["spec"]["containers"].push_back(
        {{"name", "sidecar"}, {"image", "s:1"}});
    auto live = liveFrom(manifest);
    auto& containers = live["spec"]["template"]["spec"]["containers"];
    std::swap(containers[0], containers[1]);
    EXPECT_FALSE(compare(manifest, live).modified);
    containers.erase(0);  // the sidecar is gone from the cluster
    auto r = compare(manifest, live);
    ASSERT_TRUE(r.modified);
    EXPECT_EQ(r.differences[0].path, ".spec.template.spec.containers[name=sidecar]");
    EXPECT_FALSE(r.differences[0].live.has_value());
}

TEST(Diff, MissingFieldAndReplicasDrift) {
    auto manifest = deploymentManifest();
    auto live = liveFrom(manifest);
    live["spec"]["replicas"] = 5;
    live["metadata"]["labels"].erase("app");
    auto r = compare(manifest, live);
    ASSERT_EQ(r.differences.size(), 2u);
}

TEST(Diff, IgnoreDifferencesByJsonPointer) {
    auto manifest = deploymentManifest();
    auto live = liveFrom(manifest);
    live["spec"]["replicas"] = 7;
    IgnoreRule rule;
    rule.group = "apps";
    rule.kind = "Deployment";
    rule.jsonPointers = {"/spec/replicas"};
    EXPECT_FALSE(compare(manifest, live, {rule}).modified);
    rule.kind = "StatefulSet";
    EXPECT_TRUE(compare(manifest, live, {rule}).modified);
}

TEST(Diff, IgnoreDifferencesByManagedFieldsManager) {
    auto manifest = deploymentManifest();
    auto live = liveFrom(manifest);
    live["spec"]["replicas"] = 7;
    live["metadata"]["managedFields"] =
        json::array({{{"manager", "kube-controller-manager"},
                      {"operation", "Update"},
                      {"apiVersion", "apps/v1"},
                      {"fieldsType", "FieldsV1"},
                      {"fieldsV1", {{"f:spec", {{"f:replicas", json::object()}}}}}}});
    IgnoreRule rule;
    rule.group = "apps";
    rule.kind = "Deployment";
    rule.managedFieldsManagers = {"kube-controller-manager"};
    EXPECT_FALSE(compare(manifest, live, {rule}).modified);
    EXPECT_TRUE(compare(manifest, live).modified);
}

TEST(Diff, FieldsRemovedFromGitThatSluiceAppliedAreDifferences) {
    auto manifest = deploymentManifest();
    auto live = liveFrom(manifest);
    live["metadata"]["labels"]["tier"] = "front";
    live["metadata"]["managedFields"] = json::parse(R"([{
        "manager": "sluice", "operation": "Apply", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}, "f:tier": {}}}}
    }])");
    EXPECT_FALSE(compare(manifest, live).modified);  // without a manager: only desired fields
    auto r = compare(manifest, live, {}, "sluice");
    ASSERT_TRUE(r.modified);
    EXPECT_EQ(r.differences[0].path, ".metadata.labels.tier");
    EXPECT_FALSE(r.differences[0].desired.has_value());
}

TEST(Diff, SecretStringDataComparesAgainstData) {
    json secret = {{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata", {{"name", "s"}}},
                   {"stringData", {{"password", "hunter2"}}}};
    json live = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"metadata", {{"name", "s"}}},
                 {"data", {{"password", "aHVudGVyMg=="}}},
                 {"type", "Opaque"}};
    EXPECT_FALSE(compare(secret, live).modified);
    live["data"]["password"] = "b3RoZXI=";
    EXPECT_TRUE(compare(secret, live).modified);
}

TEST(Diff, EmptyValuesAndNullsInTheManifestDoNotCount) {
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata", {{"name", "c"}, {"annotations", json::object()}, {"labels", nullptr}}},
               {"data", {{"a", "1"}}}};
    json live = {{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata", {{"name", "c"}}},
                 {"data", {{"a", "1"}}}};
    EXPECT_FALSE(compare(cm, live).modified);
}

TEST(Diff, ServerFieldsInTheManifestDoNotCount) {
    // As `kubectl get -o yaml > file` leaves them; the manifest itself is not modified.
    json manifest = deploymentManifest();
    json live = liveFrom(manifest);
    manifest["status"] = {{"replicas", 7}};
    manifest["metadata"]["uid"] = "other";
    manifest["metadata"]["resourceVersion"] = "1";
    manifest["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}";
    const json before = manifest;
    EXPECT_FALSE(compare(manifest, live).modified);
    EXPECT_EQ(manifest, before);
    // A real difference next to them is still found.
    manifest["spec"]["replicas"] = 5;
    auto r = compare(manifest, live);
    ASSERT_EQ(r.differences.size(), 1u);
    EXPECT_EQ(r.differences[0].path, ".spec.replicas");
}

TEST(Diff, IgnoreRulesLeaveTheInputsUntouched) {
    json manifest = deploymentManifest();
    json live = liveFrom(manifest);
    live["spec"]["replicas"] = 9;
    const json manifestBefore = manifest, liveBefore = live;
    IgnoreRule rule;
    rule.kind = "Deployment";
    rule.jsonPointers = {"/spec/replicas"};
    EXPECT_FALSE(compare(manifest, live, {rule}).modified);
    EXPECT_TRUE(compare(manifest, live).modified);
    EXPECT_EQ(manifest, manifestBefore);
    EXPECT_EQ(live, liveBefore);
}

TEST(Diff, MissingLiveObject) {
    auto r = compare(deploymentManifest(), nullptr);
    EXPECT_TRUE(r.modified);
}

TEST(Diff, AtomicListsCompareWhole) {
    json manifest = deploymentManifest();
    manifest["spec"]["template"]["spec"]["containers"][0]["args"] = {"--a", "--b"};
    json live = liveFrom(manifest);
    EXPECT_FALSE(compare(manifest, live).modified);
    live["spec"]["template"]["spec"]["containers"][0]["args"] = {"--a"};
    auto r = compare(manifest, live);
    ASSERT_EQ(r.differences.size(), 1u);
    EXPECT_EQ(r.differences[0].path, ".spec.template.spec.containers[name=web].args");
}
