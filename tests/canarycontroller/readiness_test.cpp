// The controller's view of a workload's readiness under the Canary's ready thresholds, and of
// the revertOnDeletion finalizer (src/canarycontroller/workload.cpp, revert.cpp).
#include <gtest/gtest.h>

#include "impl.h"

namespace sluice::canarycontroller::detail {
namespace {

using nlohmann::json;

// A Deployment of `desired` replicas, all updated, `ready` of them ready and available.
json deployment(int desired, int ready) {
    return {{"metadata", {{"generation", 2}}},
            {"spec", {{"replicas", desired}}},
            {"status",
             {{"observedGeneration", 2},
              {"replicas", desired},
              {"updatedReplicas", desired},
              {"readyReplicas", ready},
              {"availableReplicas", ready}}}};
}

TEST(ReadyThresholdObservation, EveryReplicaByDefault) {
    EXPECT_TRUE(observeDeployment(deployment(4, 4)).ready);
    EXPECT_FALSE(observeDeployment(deployment(4, 3)).ready);
    EXPECT_FALSE(observeDeployment(deployment(4, 3), 100).ready);
}

TEST(ReadyThresholdObservation, AtLeastThePercentage) {
    EXPECT_TRUE(observeDeployment(deployment(4, 2), 50).ready);
    EXPECT_FALSE(observeDeployment(deployment(4, 1), 50).ready);
    EXPECT_FALSE(observeDeployment(deployment(3, 1), 50).ready);
    EXPECT_TRUE(observeDeployment(deployment(3, 0), 0).ready);
    canaryengine::WorkloadObservation w = observeDeployment(deployment(10, 9), 90);
    EXPECT_TRUE(w.ready);
    EXPECT_EQ(w.replicas, 10);
    EXPECT_EQ(w.readyReplicas, 9);
}

TEST(ReadyThresholdObservation, TheRolloutMustStillBeComplete) {
    json rolling = deployment(4, 4);
    rolling["status"]["updatedReplicas"] = 2;  // half the pods run the old template
    EXPECT_FALSE(observeDeployment(rolling, 50).ready);
    json unseen = deployment(4, 4);
    unseen["metadata"]["generation"] = 3;
    EXPECT_FALSE(observeDeployment(unseen, 0).ready);
}

// A DaemonSet scheduled onto `desired` nodes, all updated, `ready` pods ready and available.
json daemonSet(int desired, int ready) {
    return {{"kind", "DaemonSet"},
            {"metadata", {{"generation", 3}}},
            {"status",
             {{"observedGeneration", 3},
              {"desiredNumberScheduled", desired},
              {"updatedNumberScheduled", desired},
              {"numberReady", ready},
              {"numberAvailable", ready}}}};
}

TEST(DaemonSetObservation, NodesAreItsReplicas) {
    EXPECT_FALSE(observeDaemonSet(std::nullopt).exists);
    canaryengine::WorkloadObservation w = observeDaemonSet(daemonSet(3, 3));
    EXPECT_TRUE(w.exists);
    EXPECT_TRUE(w.ready);
    EXPECT_EQ(w.replicas, 3);
    EXPECT_EQ(w.readyReplicas, 3);
    // Scaled to zero: scheduled nowhere, and nothing to wait for.
    EXPECT_TRUE(observeDaemonSet(daemonSet(0, 0)).ready);
}

TEST(DaemonSetObservation, ReadyThresholdsAndRollout) {
    EXPECT_FALSE(observeDaemonSet(daemonSet(4, 3)).ready);
    EXPECT_TRUE(observeDaemonSet(daemonSet(4, 3), 75).ready);
    EXPECT_FALSE(observeDaemonSet(daemonSet(4, 2), 75).ready);
    json rolling = daemonSet(4, 4);
    rolling["status"]["updatedNumberScheduled"] = 2;
    EXPECT_FALSE(observeDaemonSet(rolling, 50).ready);
    json unseen = daemonSet(4, 4);
    unseen["metadata"]["generation"] = 4;
    EXPECT_FALSE(observeDaemonSet(unseen, 0).ready);
    // observeWorkload picks the DaemonSet reading by the Canary's targetRef.
    EXPECT_TRUE(observeWorkload({"apps/v1", "DaemonSet", "agent"}, daemonSet(2, 2), 100).ready);
    EXPECT_EQ(workloadGvk({"apps/v1", "DaemonSet", "agent"}).kind, "DaemonSet");
    EXPECT_EQ(workloadGvk({"apps/v1", "Deployment", "web"}).kind, "Deployment");
}

TEST(DaemonSetScale, ZeroIsTheScaleToZeroNodeSelector) {
    const canaryengine::ObjectRef ref{"apps/v1", "DaemonSet", "agent"};
    json target = {{"spec", {{"template", {{"spec", {{"nodeSelector", {{"disk", "ssd"}}}}}}}}}};
    auto down = scalePatch(ref, target, 0);
    ASSERT_TRUE(down);
    EXPECT_EQ(*down, json::parse(R"({"spec":{"template":{"spec":{"nodeSelector":
                  {"sluice.io/scale-to-zero":"true"}}}}})"));
    EXPECT_FALSE(scalePatch(ref, target, 2));  // already running on its nodes
    target["spec"]["template"]["spec"]["nodeSelector"][kScaleToZeroNodeSelector] = "true";
    EXPECT_FALSE(scalePatch(ref, target, 0));
    auto up = scalePatch(ref, target, 3);
    ASSERT_TRUE(up);
    EXPECT_EQ(*up, json::parse(R"({"spec":{"template":{"spec":{"nodeSelector":
                  {"sluice.io/scale-to-zero":null}}}}})"));
    // A Deployment keeps its replicas.
    const canaryengine::ObjectRef web{"apps/v1", "Deployment", "web"};
    EXPECT_EQ(*scalePatch(web, {{"spec", {{"replicas", 2}}}}, 0),
              json::parse(R"({"spec":{"replicas":0}})"));
    EXPECT_FALSE(scalePatch(web, {{"spec", {{"replicas", 2}}}}, 2));
}

TEST(RevertFinalizer, FoundInTheFinalizerList) {
    EXPECT_FALSE(hasRevertFinalizer(json::object()));
    EXPECT_FALSE(hasRevertFinalizer({{"metadata", {{"finalizers", {"other.io/x"}}}}}));
    EXPECT_TRUE(hasRevertFinalizer(
        {{"metadata", {{"finalizers", {"other.io/x", canaryengine::kRevertFinalizer}}}}}));
}

}  // namespace
}  // namespace sluice::canarycontroller::detail
