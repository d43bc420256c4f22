#include "sluice/health/health.h"

#include <gtest/gtest.h>

using nlohmann::json;
using sluice::health::assess;
using sluice::health::Status;

namespace {

json deployment(int replicas, int generation, int observed, int updated, int current,
                int available) {
    return {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", "web"}, {"generation", generation}}},
            {"spec", {{"replicas", replicas}}},
            {"status",
             {{"observedGeneration", observed},
              {"updatedReplicas", updated},
              {"replicas", current},
              {"availableReplicas", available}}}};
}

}  // namespace

TEST(Health, MissingObject) {
    EXPECT_EQ(assess(nullptr).status, Status::Missing);
}

TEST(Health, DeploymentStates) {
    EXPECT_EQ(assess(deployment(3, 2, 2, 3, 3, 3)).status, Status::Healthy);
    EXPECT_EQ(assess(deployment(3, 3, 2, 3, 3, 3)).status, Status::Progressing);  // not observed
    auto r = assess(deployment(3, 2, 2, 1, 3, 1));
    EXPECT_EQ(r.status, Status::Progressing);
    EXPECT_NE(r.message.find("1 out of 3"), std::string::npos);
    EXPECT_EQ(assess(deployment(3, 2, 2, 3, 4, 3)).status, Status::Progressing);  // old pods
    EXPECT_EQ(assess(deployment(3, 2, 2, 3, 3, 2)).status, Status::Progressing);  // unavailable
    EXPECT_EQ(assess(deployment(0, 1, 1, 0, 0, 0)).status, Status::Healthy);      // scaled to zero

    auto paused = deployment(3, 2, 2, 3, 3, 3);
    paused["spec"]["paused"] = true;
    EXPECT_EQ(assess(paused).status, Status::Suspended);

    auto stuck = deployment(3, 2, 2, 1, 3, 1);
    stuck["status"]["conditions"] = json::array(
        {{{"type", "Progressing"}, {"status", "False"}, {"reason", "ProgressDeadlineExceeded"}}});
    EXPECT_EQ(assess(stuck).status, Status::Degraded);
}

TEST(Health, DeploymentReplicasDefaultToOne) {
    auto d = deployment(1, 1, 1, 0, 0, 0);
    d["spec"].erase("replicas");
    EXPECT_EQ(assess(d).status, Status::Progressing);
    d["status"]["updatedReplicas"] = 1;
    d["status"]["replicas"] = 1;
    d["status"]["availableReplicas"] = 1;
    EXPECT_EQ(assess(d).status, Status::Healthy);
}

TEST(Health, StatefulSet) {
    json s = {{"apiVersion", "apps/v1"},
              {"kind", "StatefulSet"},
              {"metadata", {{"generation", 1}}},
              {"spec", {{"replicas", 2}}},
              {"status",
               {{"observedGeneration", 1},
                {"readyReplicas", 1},
                {"currentRevision", "a"},
                {"updateRevision", "a"}}}};
    EXPECT_EQ(assess(s).status, Status::Progressing);
    s["status"]["readyReplicas"] = 2;
    EXPECT_EQ(assess(s).status, Status::Healthy);
    s["status"]["updateRevision"] = "b";
    EXPECT_EQ(assess(s).status, Status::Progressing);
    s["spec"]["updateStrategy"] = {{"type", "RollingUpdate"},
                                   {"rollingUpdate", {{"partition", 1}}}};
    s["status"]["updatedReplicas"] = 1;
    EXPECT_EQ(assess(s).status, Status::Healthy);
}

TEST(Health, DaemonSetAndReplicaSet) {
    json ds = {{"apiVersion", "apps/v1"},
               {"kind", "DaemonSet"},
               {"metadata", {{"generation", 1}}},
               {"status",
                {{"observedGeneration", 1},
                 {"desiredNumberScheduled", 3},
                 {"updatedNumberScheduled", 3},
                 {"numberAvailable", 2}}}};
    EXPECT_EQ(assess(ds).status, Status::Progressing);
    ds["status"]["numberAvailable"] = 3;
    EXPECT_EQ(assess(ds).status, Status::Healthy);

    json rs = {{"apiVersion", "apps/v1"},
               {"kind", "ReplicaSet"},
               {"metadata", {{"generation", 1}}},
               {"spec", {{"replicas", 2}}},
               {"status", {{"observedGeneration", 1}, {"availableReplicas", 2}}}};
    EXPECT_EQ(assess(rs).status, Status::Healthy);
    rs["status"]["conditions"] = json::array(
        {{{"type", "ReplicaFailure"}, {"status", "True"}, {"message", "quota exceeded"}}});
    auto r = assess(rs);
    EXPECT_EQ(r.status, Status::Degraded);
    EXPECT_EQ(r.message, "quota exceeded");
}

TEST(Health, Pod) {
    json p = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"status", {{"phase", "Pending"}}}};
    EXPECT_EQ(assess(p).status, Status::Progressing);
    p["status"]["phase"] = "Running";
    EXPECT_EQ(assess(p).status, Status::Progressing);
    p["status"]["conditions"] = json::array({{{"type", "Ready"}, {"status", "True"}}});
    EXPECT_EQ(assess(p).status, Status::Healthy);
    p["status"]["containerStatuses"] = json::array(
        {{{"name", "a"},
          {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}, {"message", "back-off"}}}}}}});
    auto r = assess(p);
    EXPECT_EQ(r.status, Status::Degraded);
    EXPECT_EQ(r.message, "CrashLoopBackOff: back-off");
    p.erase("status");
    p["status"]["phase"] = "Failed";
    EXPECT_EQ(assess(p).status, Status::Degraded);
    p["status"]["phase"] = "Succeeded";
    EXPECT_EQ(assess(p).status, Status::Healthy);
}

TEST(Health, ServiceIngressPvc) {
    json svc = {{"apiVersion", "v1"}, {"kind", "Service"}, {"spec", {{"type", "ClusterIP"}}}};
    EXPECT_EQ(assess(svc).status, Status::Healthy);
    svc["spec"]["type"] = "LoadBalancer";
    EXPECT_EQ(assess(svc).status, Status::Progressing);
    svc["status"]["loadBalancer"]["ingress"] = json::array({{{"ip", "10.0.0.1"}}});
    EXPECT_EQ(assess(svc).status, Status::Healthy);

    json ing = {{"apiVersion", "networking.k8s.io/v1"}, {"kind", "Ingress"}};
    EXPECT_EQ(assess(ing).status, Status::Progressing);
    ing["status"]["loadBalancer"]["ingress"] = json::array({{{"hostname", "lb.example"}}});
    EXPECT_EQ(assess(ing).status, Status::Healthy);

    json pvc = {{"apiVersion", "v1"},
                {"kind", "PersistentVolumeClaim"},
                {"status", {{"phase", "Pending"}}}};
    EXPECT_EQ(assess(pvc).status, Status::Progressing);
    pvc["status"]["phase"] = "Bound";
    EXPECT_EQ(assess(pvc).status, Status::Healthy);
    pvc["status"]["phase"] = "Lost";
    EXPECT_EQ(assess(pvc).status, Status::Degraded);
}

TEST(Health, JobAndHpa) {
    json job = {{"apiVersion", "batch/v1"}, {"kind", "Job"}};
    EXPECT_EQ(assess(job).status, Status::Progressing);
    job["status"]["conditions"] = json::array({{{"type", "Complete"}, {"status", "True"}}});
    EXPECT_EQ(assess(job).status, Status::Healthy);
    job["status"]["conditions"] = json::array(
        {{{"type", "Failed"}, {"status", "True"}, {"message", "BackoffLimitExceeded"}}});
    EXPECT_EQ(assess(job).status, Status::Degraded);

    json hpa = {{"apiVersion", "autoscaling/v2"}, {"kind", "HorizontalPodAutoscaler"}};
    EXPECT_EQ(assess(hpa).status, Status::Progressing);
    hpa["status"]["conditions"] = json::array(
        {{{"type", "AbleToScale"}, {"status", "True"}},
         {{"type", "ScalingActive"}, {"status", "False"}, {"reason", "FailedGetResourceMetric"}}});
    EXPECT_EQ(assess(hpa).status, Status::Degraded);
    hpa["status"]["conditions"][1]["status"] = "True";
    EXPECT_EQ(assess(hpa).status, Status::Healthy);
}

TEST(Health, SluiceKinds) {
    json canary = {{"apiVersion", "sluice.io/v1alpha1"},
                   {"kind", "Canary"},
                   {"status", {{"phase", "Progressing"}}}};
    EXPECT_EQ(assess(canary).status, Status::Progressing);
    canary["status"]["phase"] = "Failed";
    EXPECT_EQ(assess(canary).status, Status::Degraded);
    canary["status"]["phase"] = "Succeeded";
    EXPECT_EQ(assess(canary).status, Status::Healthy);

    json app = {{"apiVersion", "sluice.io/v1alpha1"},
                {"kind", "Application"},
                {"status", {{"health", {{"status", "Degraded"}, {"message", "x"}}}}}};
    EXPECT_EQ(assess(app).status, Status::Degraded);
}

TEST(Health, CanaryPhases) {
    // Flagger's phases: analysis (and everything leading to a promotion) is Progressing, a
    // rollback is Degraded, a promoted or freshly initialised canary is Healthy.
    const std::pair<const char*, Status> kPhases[] = {{"", Status::Progressing},
                                                      {"Initializing", Status::Progressing},
                                                      {"Initialized", Status::Healthy},
                                                      {"Waiting", Status::Progressing},
                                                      {"Progressing", Status::Progressing},
                                                      {"WaitingPromotion", Status::Progressing},
                                                      {"Promoting", Status::Progressing},
                                                      {"Finalising", Status::Progressing},
                                                      {"Succeeded", Status::Healthy},
                                                      {"Failed", Status::Degraded}};
    for (const auto& [phase, expected] : kPhases) {
        json canary = {{"apiVersion", "flagger.app/v1beta1"}, {"kind", "Canary"}};
        if (*phase) canary["status"] = {{"phase", phase}};
        EXPECT_EQ(assess(canary).status, expected) << phase;
        canary["apiVersion"] = "sluice.io/v1alpha1";
        EXPECT_EQ(assess(canary).status, expected) << phase;
    }
}

TEST(Health, CanaryTargetAtRestWithZeroReplicasIsHealthy) {
    // The Canary controller scales its target to zero between analyses.
    EXPECT_EQ(assess(deployment(0, 3, 3, 0, 0, 0)).status, Status::Healthy);
    // Pods of the scale-down the status still counts do not make it Progressing.
    EXPECT_EQ(assess(deployment(0, 3, 3, 2, 2, 2)).status, Status::Healthy);
    // Until the scale-down is observed it is Progressing, as any change.
    EXPECT_EQ(assess(deployment(0, 4, 3, 2, 2, 2)).status, Status::Progressing);
}

TEST(Health, UnknownKindsAreHealthyOnceTheyExistAndDeletingIsProgressing) {
    json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "c"}}}};
    EXPECT_EQ(assess(cm).status, Status::Healthy);
    cm["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
    EXPECT_EQ(assess(cm).status, Status::Progressing);
}

TEST(Health, OrderOfBadnessIsArgoCds) {
    using sluice::health::worst;
    EXPECT_EQ(worst(Status::Healthy, Status::Suspended), Status::Suspended);
    EXPECT_EQ(worst(Status::Suspended, Status::Progressing), Status::Progressing);
    EXPECT_EQ(worst(Status::Progressing, Status::Missing), Status::Missing);
    EXPECT_EQ(worst(Status::Missing, Status::Degraded), Status::Degraded);
    EXPECT_EQ(worst(Status::Degraded, Status::Unknown), Status::Unknown);
    EXPECT_EQ(sluice::health::parseStatus("Healthy"), Status::Healthy);
    EXPECT_EQ(sluice::health::parseStatus("nonsense"), Status::Unknown);
}

TEST(Health, ArgoWorkflowByPhase) {
    json wf = {{"apiVersion", "argoproj.io/v1alpha1"}, {"kind", "Workflow"}};
    EXPECT_EQ(assess(wf).status, Status::Progressing);
    wf["status"]["phase"] = "Running";
    EXPECT_EQ(assess(wf).status, Status::Progressing);
    wf["status"]["phase"] = "Succeeded";
    EXPECT_EQ(assess(wf).status, Status::Healthy);
    for (const char* phase : {"Failed", "Error"}) {
        wf["status"] = {{"phase", phase}, {"message", "child 'smoke' failed"}};
        auto a = assess(wf);
        EXPECT_EQ(a.status, Status::Degraded) << phase;
        EXPECT_EQ(a.message, "child 'smoke' failed");
    }
}
