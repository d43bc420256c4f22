// Flagger's suspend, revertOnDeletion and ready thresholds through the controller, against the
// in-process API server.
#include "harness.h"

namespace sluice::canarytest {
namespace {

bool hasFinalizer(const json& canary) {
    const json list = canary.value("metadata", json::object()).value("finalizers", json::array());
    return std::find(list.begin(), list.end(), canaryengine::kRevertFinalizer) != list.end();
}

void setSpecField(kube::KubeClient& client, const std::string& name, const std::string& field,
                  const json& value) {
    json patch = {{"spec", {{field, value}}}};
    client.patch(kCanaryGvk, kNs, name, kube::PatchType::Merge, patch.dump());
}

TEST_F(CanaryControllerTest, SuspendHoldsANewRevisionUntilResumed) {
    healthyMetrics();
    startController();
    ASSERT_NO_FATAL_FAILURE(initialise(gatewayCanary("podinfo", "podinfo"), "podinfo"));
    setSpecField(*client_, "podinfo", "suspend", true);
    ASSERT_TRUE(eventually([&] { return !events("Suspended").empty(); }));

    setImage("podinfo", "example/app:2.0");
    std::this_thread::sleep_for(3s);  // three analysis intervals
    EXPECT_EQ(phase("podinfo"), "Initialized");
    EXPECT_EQ(replicasOf("podinfo"), 0);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:1.0");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_EQ(events("Suspended").size(), 1u);

    setSpecField(*client_, "podinfo", "suspend", false);
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    EXPECT_TRUE(hasEventContaining("Resumed", "Canary resumed"));
}

TEST_F(CanaryControllerTest, SuspendHoldsARunningAnalysisAtItsWeight) {
    healthyMetrics();
    startController();
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["analysis"]["maxWeight"] = 75;
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return routeWeights("podinfo").second == 25; }))
        << status("podinfo").dump(2);
    setSpecField(*client_, "podinfo", "suspend", true);
    ASSERT_TRUE(eventually([&] { return !events("Suspended").empty(); }));
    const int held = routeWeights("podinfo").second;
    std::this_thread::sleep_for(3s);
    EXPECT_EQ(phase("podinfo"), "Progressing");
    EXPECT_EQ(routeWeights("podinfo").second, held);
    EXPECT_EQ(status("podinfo").value("canaryWeight", -1), held);

    setSpecField(*client_, "podinfo", "suspend", false);
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
}

TEST_F(CanaryControllerTest, RevertOnDeletionRestoresTheTargetAndItsService) {
    healthyMetrics();
    startController();
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["revertOnDeletion"] = true;
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    ASSERT_TRUE(eventually([&] { return hasFinalizer(canaryObject("podinfo")); }));
    ASSERT_TRUE(eventually([&] { return replicasOf("podinfo") == 0; }));

    client_->remove(kCanaryGvk, kNs, "podinfo");
    // The target is scaled back up before the Canary (and with it the primary) goes.
    ASSERT_TRUE(eventually([&] { return canaryObject("podinfo").is_null(); }));
    EXPECT_EQ(replicasOf("podinfo"), 2);
    EXPECT_TRUE(hasEventContaining("Reverted", "all traffic routed to podinfo"));
    // The apex Service outlives the Canary and selects the target's pods; the rest goes.
    ASSERT_TRUE(eventually([&] { return !deploymentObject("podinfo-primary"); }));
    ASSERT_TRUE(eventually([&] { return !object("v1", "Service", "podinfo-primary"); }));
    ASSERT_TRUE(eventually(
        [&] { return !object("gateway.networking.k8s.io/v1", "HTTPRoute", "podinfo"); }));
    auto apex = object("v1", "Service", "podinfo");
    ASSERT_TRUE(apex);
    EXPECT_EQ((*apex)["spec"]["selector"], json({{"app", "podinfo"}}));
    EXPECT_FALSE((*apex)["metadata"].contains("ownerReferences"));
    EXPECT_EQ(replicasOf("podinfo"), 2);
}

TEST_F(CanaryControllerTest, WithoutRevertOnDeletionTheCanaryGoesWithEverythingItMade) {
    healthyMetrics();
    startController();
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["revertOnDeletion"] = true;
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    ASSERT_TRUE(eventually([&] { return hasFinalizer(canaryObject("podinfo")); }));
    // Turned off, the finalizer goes too.
    setSpecField(*client_, "podinfo", "revertOnDeletion", false);
    ASSERT_TRUE(eventually([&] { return !hasFinalizer(canaryObject("podinfo")); }));
    ASSERT_TRUE(eventually([&] { return replicasOf("podinfo") == 0; }));

    client_->remove(kCanaryGvk, kNs, "podinfo");
    ASSERT_TRUE(eventually([&] { return canaryObject("podinfo").is_null(); }));
    ASSERT_TRUE(eventually([&] { return !object("v1", "Service", "podinfo"); }));
    EXPECT_TRUE(eventually([&] { return !deploymentObject("podinfo-primary"); }));
    EXPECT_EQ(replicasOf("podinfo"), 0);
    EXPECT_TRUE(events("Reverted").empty());
}

// Workload status written by the test, so that only some replicas are ready.
class ReadyThresholdTest : public CanaryControllerTest {
  protected:
    testing::ApiServerOptions serverOptions() override {
        testing::ApiServerOptions o = CanaryControllerTest::serverOptions();
        o.simulateWorkloads = false;
        return o;
    }
    // A finished rollout of the current generation with `ready` replicas ready and available.
    void markReady(const std::string& name, int ready) {
        json d = client_->get(kDeploymentGvk, kNs, name);
        const int n = d["spec"].value("replicas", 1);
        json status = {{"observedGeneration", d["metadata"].value("generation", 1)},
                       {"replicas", n},
                       {"updatedReplicas", n},
                       {"readyReplicas", ready},
                       {"availableReplicas", ready}};
        kube::PatchOptions po;
        po.subresource = "status";
        client_->patch(kDeploymentGvk, kNs, name, kube::PatchType::Merge,
                       json({{"status", status}}).dump(), po);
    }
};

TEST_F(ReadyThresholdTest, AWorkloadIsReadyWithThePercentageOfItsReplicas) {
    healthyMetrics();
    startController();
    server_->create(deployment("podinfo", "example/app:1.0", 4));
    markReady("podinfo", 4);
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["analysis"]["primaryReadyThreshold"] = 75;
    canary["spec"]["analysis"]["canaryReadyThreshold"] = 50;
    server_->create(canary);

    // 2 of 4 primary replicas: less than 75 %, still initialising; 3 of 4 is enough.
    ASSERT_TRUE(eventually([&] { return deploymentObject("podinfo-primary").has_value(); }));
    markReady("podinfo-primary", 2);
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(phase("podinfo"), "Initializing");
    markReady("podinfo-primary", 3);
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Initialized"; }))
        << status("podinfo").dump(2);
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 0; }));

    // The new revision: 1 of 4 canary replicas holds the analysis, 2 of 4 lets it advance.
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return replicasOf("podinfo") == 4; }));
    markReady("podinfo", 1);
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    markReady("podinfo", 2);
    EXPECT_TRUE(eventually([&] { return routeWeights("podinfo").second > 0; }))
        << status("podinfo").dump(2);
}

}  // namespace
}  // namespace sluice::canarytest
