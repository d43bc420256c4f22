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

TEST(RevertFinalizer, FoundInTheFinalizerList) {
    EXPECT_FALSE(hasRevertFinalizer(json::object()));
    EXPECT_FALSE(hasRevertFinalizer({{"metadata", {{"finalizers", {"other.io/x"}}}}}));
    EXPECT_TRUE(hasRevertFinalizer(
        {{"metadata", {{"finalizers", {"other.io/x", canaryengine::kRevertFinalizer}}}}}));
}

}  // namespace
}  // namespace sluice::canarycontroller::detail
