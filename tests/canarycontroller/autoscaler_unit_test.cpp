// spec.autoscalerRef's pure helpers (src/canarycontroller/autoscaler.h): the served HPA
// version, the primary's copy of an HPA and of a KEDA ScaledObject, replica ownership and
// pausing a ScaledObject.
#include "autoscaler.h"

#include <gtest/gtest.h>

#include <set>

namespace sluice::canarycontroller::detail {
namespace {

using nlohmann::json;

canaryengine::CanarySpec canaryWith(const json& autoscalerRef) {
    json spec = {
        {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "app"}}},
        {"autoscalerRef", autoscalerRef},
        {"service", {{"port", 80}}},
        {"skipAnalysis", true}};
    auto parsed = canaryengine::parseCanarySpec(spec);
    EXPECT_TRUE(parsed.ok()) << (parsed.errors.empty() ? "" : parsed.errors[0]);
    return parsed.spec;
}

json targetHpa() {
    return json::parse(R"({
      "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
      "metadata": {"name": "app-hpa", "namespace": "ns", "resourceVersion": "9", "uid": "u",
                   "labels": {"team": "a", "app.kubernetes.io/instance": "shop"},
                   "annotations": {"argocd.argoproj.io/tracking-id": "shop:x", "note": "kept"}},
      "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
               "minReplicas": 2, "maxReplicas": 4,
               "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80}}}],
               "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
      "status": {"currentReplicas": 3}
    })");
}

TEST(AutoscalerHpaKind, PrefersV2AndFallsBackToTheBetaVersions) {
    std::set<std::string> servedVersions;
    auto served = [&](const kube::GroupVersionKind& gvk) {
        EXPECT_EQ(gvk.group, "autoscaling");
        EXPECT_EQ(gvk.kind, "HorizontalPodAutoscaler");
        return servedVersions.count(gvk.version) > 0;
    };
    servedVersions = {"v1", "v2", "v2beta2"};
    EXPECT_EQ(hpaKind(served)->version, "v2");
    servedVersions = {"v1", "v2beta2", "v2beta1"};
    EXPECT_EQ(hpaKind(served)->version, "v2beta2");
    servedVersions = {"v1", "v2beta1"};
    EXPECT_EQ(hpaKind(served)->version, "v2beta1");
    servedVersions = {"v1"};
    EXPECT_FALSE(hpaKind(served));
}

TEST(PrimaryAutoscaler, HpaScalesThePrimaryWithTheTargetsSpec) {
    const auto spec = canaryWith({{"apiVersion", "autoscaling/v2"},
                                  {"kind", "HorizontalPodAutoscaler"},
                                  {"name", "app-hpa"}});
    const json primary = primaryAutoscalerFor(targetHpa(), spec);
    json expected = json::parse(R"({
      "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
      "metadata": {"name": "app-hpa-primary", "namespace": "ns",
                   "labels": {"team": "a"}, "annotations": {"note": "kept"}},
      "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                  "name": "app-primary"},
               "minReplicas": 2, "maxReplicas": 4,
               "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80}}}],
               "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}
    })");
    EXPECT_EQ(primary, expected) << primary.dump(2);
}

TEST(PrimaryAutoscaler, PrimaryScalerReplicasOverrideTheTargetsBounds) {
    const auto spec = canaryWith({{"kind", "HorizontalPodAutoscaler"},
                                  {"name", "app-hpa"},
                                  {"primaryScalerReplicas", {{"maxReplicas", 9}}}});
    const json primary = primaryAutoscalerFor(targetHpa(), spec);
    EXPECT_EQ(primary["spec"]["minReplicas"], 2);  // the target's: not overridden
    EXPECT_EQ(primary["spec"]["maxReplicas"], 9);

    // The version read is the version written (an older cluster's v2beta2).
    json beta = targetHpa();
    beta["apiVersion"] = "autoscaling/v2beta2";
    EXPECT_EQ(primaryAutoscalerFor(beta, spec)["apiVersion"], "autoscaling/v2beta2");
}

json targetScaledObject() {
    return json::parse(R"J({
      "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
      "metadata": {"name": "app-so", "namespace": "ns",
                   "annotations": {"autoscaling.keda.sh/paused-replicas": "0"}},
      "spec": {"scaleTargetRef": {"name": "app"}, "pollingInterval": 10,
               "minReplicaCount": 1, "maxReplicaCount": 3,
               "advanced": {"horizontalPodAutoscalerConfig": {"name": "custom-hpa",
                            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}}},
               "triggers": [
                 {"type": "prometheus", "name": "requests",
                  "metadata": {"serverAddress": "http://prom:9090",
                               "query": "sum(rate(http_requests_total{workload=\"app-canary\"}[1m])) + sum(up{deployment=\"app\"})"}},
                 {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}]}
    })J");
}

TEST(PrimaryAutoscaler, ScaledObjectQueriesNameThePrimary) {
    const auto spec =
        canaryWith({{"apiVersion", "keda.sh/v1alpha1"},
                    {"kind", "ScaledObject"},
                    {"name", "app-so"},
                    {"primaryScalerReplicas", {{"minReplicas", 2}, {"maxReplicas", 5}}}});
    const json primary = primaryAutoscalerFor(targetScaledObject(), spec);
    EXPECT_EQ(primary["metadata"]["name"], "app-so-primary");
    // The target's pause is not the primary's.
    EXPECT_FALSE(primary["metadata"].contains("annotations")) << primary.dump(2);
    const json& s = primary["spec"];
    EXPECT_EQ(s["scaleTargetRef"]["name"], "app-primary");
    EXPECT_EQ(s["pollingInterval"], 10);
    EXPECT_EQ(s["minReplicaCount"], 2);
    EXPECT_EQ(s["maxReplicaCount"], 5);
    // KEDA names the copy's HPA itself; the behaviour stays.
    EXPECT_FALSE(s["advanced"]["horizontalPodAutoscalerConfig"].contains("name"));
    EXPECT_EQ(s["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
               ["stabilizationWindowSeconds"],
              30);
    EXPECT_EQ(s["triggers"][0]["metadata"]["query"],
              "sum(rate(http_requests_total{workload=\"app-primary\"}[1m])) + "
              "sum(up{deployment=\"app-primary\"})");
    EXPECT_EQ(s["triggers"][1], targetScaledObject()["spec"]["triggers"][1]);
}

TEST(PrimaryAutoscaler, PrimaryScalerQueriesReplaceNamedTriggersOnly) {
    const auto spec = canaryWith({{"kind", "ScaledObject"},
                                  {"name", "app-so"},
                                  {"primaryScalerQueries", {{"requests", "sum(primary_rps)"}}}});
    json target = targetScaledObject();
    target["spec"]["triggers"].push_back({{"type", "prometheus"},
                                          {"name", "other"},
                                          {"metadata", {{"query", "sum(x{app=\"app\"})"}}}});
    const json primary = primaryAutoscalerFor(target, spec);
    EXPECT_EQ(primary["spec"]["triggers"][0]["metadata"]["query"], "sum(primary_rps)");
    EXPECT_EQ(primary["spec"]["triggers"][2]["metadata"]["query"], "sum(x{app=\"app\"})");
}

TEST(PrimaryQuery, NeverDoublesTheSuffix) {
    EXPECT_EQ(primaryQuery("a{d=\"app\"} b{d=\"app-canary\"} c{d=\"app-primary\"}", "app"),
              "a{d=\"app-primary\"} b{d=\"app-primary\"} c{d=\"app-primary\"}");
    EXPECT_EQ(primaryQuery("sum(x)", ""), "sum(x)");
}

TEST(AppliesReplicas, OnlyAnApplyOfThisManagerOnTheMainResourceCounts) {
    auto withEntry = [](const json& entry) {
        return json{{"metadata", {{"managedFields", json::array({entry})}}}};
    };
    const json replicas = {{"f:spec", {{"f:replicas", json::object()}}}};
    EXPECT_TRUE(appliesReplicas(
        withEntry({{"manager", "sluice"}, {"operation", "Apply"}, {"fieldsV1", replicas}}),
        "sluice"));
    EXPECT_FALSE(appliesReplicas(
        withEntry({{"manager", "other"}, {"operation", "Apply"}, {"fieldsV1", replicas}}),
        "sluice"));
    EXPECT_FALSE(appliesReplicas(
        withEntry({{"manager", "sluice"}, {"operation", "Update"}, {"fieldsV1", replicas}}),
        "sluice"));
    EXPECT_FALSE(appliesReplicas(withEntry({{"manager", "sluice"},
                                            {"operation", "Apply"},
                                            {"subresource", "scale"},
                                            {"fieldsV1", replicas}}),
                                 "sluice"));
    EXPECT_FALSE(
        appliesReplicas(withEntry({{"manager", "sluice"},
                                   {"operation", "Apply"},
                                   {"fieldsV1", {{"f:spec", {{"f:template", json::object()}}}}}}),
                        "sluice"));
    EXPECT_FALSE(appliesReplicas(json::object(), "sluice"));
}

TEST(ScaledObjectPause, PausesAtZeroAndResumesOnlyWhenNeeded) {
    json so = targetScaledObject();  // paused
    EXPECT_FALSE(scaledObjectPausePatch(so, true));
    auto resume = scaledObjectPausePatch(so, false);
    ASSERT_TRUE(resume);
    EXPECT_EQ(*resume,
              json::parse(
                  R"({"metadata":{"annotations":{"autoscaling.keda.sh/paused-replicas":null}}})"));
    so["metadata"].erase("annotations");
    EXPECT_FALSE(scaledObjectPausePatch(so, false));
    auto pause = scaledObjectPausePatch(so, true);
    ASSERT_TRUE(pause);
    EXPECT_EQ((*pause)["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"], "0");
}

}  // namespace
}  // namespace sluice::canarycontroller::detail
