// spec.autoscalerRef end to end against the in-process API server: an HPA-backed canary whose
// `<hpa>-primary` exists after initialisation, keeps its spec at rest, follows the target's HPA
// at promotion, and whose primary replicas stay the autoscaler's.
#include "harness.h"

namespace sluice::canarytest {
namespace {

const kube::GroupVersionKind kHpaGvk{"autoscaling", "v2", "HorizontalPodAutoscaler"};

json targetHpa(int averageUtilization) {
    return {{"apiVersion", "autoscaling/v2"},
            {"kind", "HorizontalPodAutoscaler"},
            {"metadata", {{"name", "podinfo"}, {"namespace", kNs}, {"labels", {{"team", "a"}}}}},
            {"spec",
             {{"scaleTargetRef",
               {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "podinfo"}}},
              {"minReplicas", 2},
              {"maxReplicas", 4},
              {"metrics", json::array({{{"type", "Resource"},
                                        {"resource",
                                         {{"name", "cpu"},
                                          {"target",
                                           {{"type", "Utilization"},
                                            {"averageUtilization", averageUtilization}}}}}}})}}}};
}

int utilizationOf(const json& hpa) {
    return hpa["spec"]["metrics"][0]["resource"]["target"].value("averageUtilization", -1);
}

TEST_F(CanaryControllerTest, HpaBackedCanaryCopiesItsAutoscalerForThePrimary) {
    healthyMetrics();
    startController();
    server_->create(targetHpa(80));
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["autoscalerRef"] = {{"apiVersion", "autoscaling/v2"},
                                       {"kind", "HorizontalPodAutoscaler"},
                                       {"name", "podinfo"},
                                       {"primaryScalerReplicas", {{"maxReplicas", 6}}}};
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));

    // After initialisation: podinfo-primary HPA scales the primary, owned by the Canary.
    auto primaryHpa = object("autoscaling/v2", "HorizontalPodAutoscaler", "podinfo-primary");
    ASSERT_TRUE(primaryHpa);
    EXPECT_EQ((*primaryHpa)["spec"]["scaleTargetRef"]["name"], "podinfo-primary");
    EXPECT_EQ((*primaryHpa)["spec"]["minReplicas"], 2);
    EXPECT_EQ((*primaryHpa)["spec"]["maxReplicas"], 6);  // primaryScalerReplicas
    EXPECT_EQ(utilizationOf(*primaryHpa), 80);
    EXPECT_EQ((*primaryHpa)["metadata"]["labels"]["team"], "a");
    EXPECT_EQ((*primaryHpa)["metadata"]["ownerReferences"][0].value("kind", ""), "Canary");
    EXPECT_TRUE(sawAction("InitializePrimaryAutoscaler"));
    // autoscalerRef has an effect now: not named as ignored.
    EXPECT_TRUE(events("FieldsNotImplemented").empty());

    // The autoscaler scales the primary (as the HPA controller does, another manager).
    json scale = {{"spec", {{"replicas", 3}}}};
    kube::PatchOptions hpaManager;
    hpaManager.fieldManager = "horizontal-pod-autoscaler";
    client_->patch(kDeploymentGvk, kNs, "podinfo-primary", kube::PatchType::Merge, scale.dump(),
                   hpaManager);
    ASSERT_TRUE(eventually([&] { return replicasOf("podinfo-primary") == 3; }));

    // The target's HPA changes: the primary's follows at the next promotion, not before.
    client_->patch(kHpaGvk, kNs, "podinfo", kube::PatchType::Merge,
                   json({{"spec", targetHpa(60)["spec"]}}).dump());
    std::this_thread::sleep_for(2s);
    EXPECT_EQ(
        utilizationOf(*object("autoscaling/v2", "HorizontalPodAutoscaler", "podinfo-primary")), 80);

    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    primaryHpa = object("autoscaling/v2", "HorizontalPodAutoscaler", "podinfo-primary");
    ASSERT_TRUE(primaryHpa);
    EXPECT_EQ(utilizationOf(*primaryHpa), 60);
    EXPECT_EQ((*primaryHpa)["spec"]["maxReplicas"], 6);
    EXPECT_EQ((*primaryHpa)["spec"]["scaleTargetRef"]["name"], "podinfo-primary");
    EXPECT_TRUE(sawAction("CopyAutoscalerToPrimary"));
    // The primary's replicas stayed the autoscaler's through the promotion.
    EXPECT_EQ(replicasOf("podinfo-primary"), 3);
    EXPECT_EQ(replicasOf("podinfo"), 0);
    EXPECT_EQ(controller_->stats().errors, 0u);
}

TEST_F(CanaryControllerTest, InitialisationWaitsForTheAutoscalerItCopies) {
    startController();
    server_->create(deployment("podinfo", "example/app:1.0"));
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["autoscalerRef"] = {
        {"apiVersion", "autoscaling/v2"}, {"kind", "HorizontalPodAutoscaler"}, {"name", "podinfo"}};
    server_->create(canary);
    ASSERT_TRUE(eventually([&] { return !events("AutoscalerNotFound").empty(); }));
    EXPECT_FALSE(deploymentObject("podinfo-primary"));

    server_->create(targetHpa(70));
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Initialized"; }))
        << status("podinfo").dump(2);
    auto primaryHpa = object("autoscaling/v2", "HorizontalPodAutoscaler", "podinfo-primary");
    ASSERT_TRUE(primaryHpa);
    EXPECT_EQ(utilizationOf(*primaryHpa), 70);
    EXPECT_EQ((*primaryHpa)["spec"]["maxReplicas"], 4);
}

TEST_F(CanaryControllerTest, ScaledObjectIsCopiedAndTheTargetsIsPausedAtZero) {
    // The official KEDA CRD, so what Sluice writes is checked against KEDA's schema.
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/keda-v2.20.2/keda.sh_scaledobjects.yaml");
    server_->createFromFile(sharedPath("thirdparty-crds/keda-v2.20.2/keda.sh_scaledobjects.yaml"));
    const kube::GroupVersionKind soGvk{"keda.sh", "v1alpha1", "ScaledObject"};
    ASSERT_TRUE(eventually([&] {
        try {
            client_->resourceFor(soGvk);
            return true;
        } catch (const std::exception&) {
            return false;
        }
    }));
    healthyMetrics();
    startController();
    json so = {
        {"apiVersion", "keda.sh/v1alpha1"},
        {"kind", "ScaledObject"},
        {"metadata", {{"name", "podinfo-so"}, {"namespace", kNs}}},
        {"spec",
         {{"scaleTargetRef", {{"name", "podinfo"}}},
          {"minReplicaCount", 1},
          {"maxReplicaCount", 3},
          {"triggers",
           json::array(
               {{{"type", "prometheus"},
                 {"name", "rps"},
                 {"metadata",
                  {{"serverAddress", "http://prometheus:9090"},
                   {"threshold", "10"},
                   {"query", "sum(rate(http_requests_total{workload=\"podinfo\"}[1m]))"}}}}})}}}};
    server_->create(so);
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["autoscalerRef"] = {{"apiVersion", "keda.sh/v1alpha1"},
                                       {"kind", "ScaledObject"},
                                       {"name", "podinfo-so"},
                                       {"primaryScalerReplicas", {{"minReplicas", 2}}}};
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));

    auto primary = object("keda.sh/v1alpha1", "ScaledObject", "podinfo-so-primary");
    ASSERT_TRUE(primary);
    EXPECT_EQ((*primary)["spec"]["scaleTargetRef"]["name"], "podinfo-primary");
    EXPECT_EQ((*primary)["spec"]["minReplicaCount"], 2);
    EXPECT_EQ((*primary)["spec"]["maxReplicaCount"], 3);
    EXPECT_EQ((*primary)["spec"]["triggers"][0]["metadata"]["query"],
              "sum(rate(http_requests_total{workload=\"podinfo-primary\"}[1m]))");
    // At rest the target is at zero and its ScaledObject paused there; the copy is not.
    auto paused = [&](const std::string& name) {
        auto o = object("keda.sh/v1alpha1", "ScaledObject", name);
        return o && (*o)["metadata"]
                            .value("annotations", json::object())
                            .value("autoscaling.keda.sh/paused-replicas", "") == "0";
    };
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 0 && paused("podinfo-so"); }));
    EXPECT_FALSE(paused("podinfo-so-primary"));

    // During the analysis it is resumed, and paused again once the promotion is done.
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Progressing"; }));
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") > 0 && !paused("podinfo-so"); }));
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 0 && paused("podinfo-so"); }));
    EXPECT_EQ(controller_->stats().errors, 0u);
}

}  // namespace
}  // namespace sluice::canarytest
