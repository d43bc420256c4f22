#include <gtest/gtest.h>

#include "apilogic/apilogic.h"

namespace sluice::apilogic {
namespace {

const std::string kT1 = "2024-05-01T12:00:00Z";
const std::string kT2 = "2024-05-01T12:05:00Z";

const json* condition(const json& status, const std::string& type) {
    for (const auto& c : status["conditions"])
        if (c["type"] == type) return &c;
    return nullptr;
}

json deployment(int replicas, int generation) {
    json d = {{"apiVersion", "apps/v1"},
              {"kind", "Deployment"},
              {"metadata", {{"name", "web"}, {"generation", generation}}},
              {"spec",
               {{"replicas", replicas},
                {"template", {{"spec", {{"containers", {{{"name", "app"}}}}}}}}}}};
    return d;
}

TEST(SimulatedStatus, DeploymentRolledOut) {
    json st = simulatedStatus(deployment(3, 4), kT1);
    EXPECT_EQ(st["observedGeneration"], 4);
    for (const char* f : {"replicas", "updatedReplicas", "readyReplicas", "availableReplicas"})
        EXPECT_EQ(st[f], 3) << f;
    const json* avail = condition(st, "Available");
    ASSERT_NE(avail, nullptr);
    EXPECT_EQ((*avail)["status"], "True");
    EXPECT_EQ((*avail)["reason"], "MinimumReplicasAvailable");
    EXPECT_EQ((*avail)["lastTransitionTime"], kT1);
    EXPECT_EQ((*avail)["lastUpdateTime"], kT1);
    const json* prog = condition(st, "Progressing");
    ASSERT_NE(prog, nullptr);
    EXPECT_EQ((*prog)["status"], "True");
    EXPECT_EQ((*prog)["reason"], "NewReplicaSetAvailable");
    EXPECT_NE((*prog)["message"].get<std::string>().find("ReplicaSet \"web-"), std::string::npos);
}

TEST(SimulatedStatus, DeploymentDefaultsAndZeroReplicas) {
    json d = deployment(1, 1);
    d["spec"].erase("replicas");
    d["metadata"].erase("generation");
    json st = simulatedStatus(d, kT1);
    EXPECT_EQ(st["replicas"], 1);
    EXPECT_EQ(st["availableReplicas"], 1);
    EXPECT_EQ(st["observedGeneration"], 1);

    json zero = simulatedStatus(deployment(0, 2), kT1);
    EXPECT_EQ(zero["observedGeneration"], 2);
    EXPECT_EQ(zero.value("replicas", 0), 0);  // omitted like upstream's omitempty
    EXPECT_EQ(zero.value("availableReplicas", 0), 0);
    EXPECT_EQ((*condition(zero, "Available"))["status"], "True");
}

TEST(SimulatedStatus, ConditionTimesStableWhileStatusUnchanged) {
    json d = deployment(2, 1);
    d["status"] = simulatedStatus(d, kT1);
    json again = simulatedStatus(d, kT2);
    EXPECT_EQ((*condition(again, "Available"))["lastTransitionTime"], kT1);
    EXPECT_EQ((*condition(again, "Progressing"))["lastUpdateTime"], kT1);

    // A new generation is a new rollout: progress is reported again, the transition is not.
    d["metadata"]["generation"] = 2;
    json rolled = simulatedStatus(d, kT2);
    EXPECT_EQ((*condition(rolled, "Progressing"))["lastUpdateTime"], kT2);
    EXPECT_EQ((*condition(rolled, "Progressing"))["lastTransitionTime"], kT1);

    // From False to True the transition time moves.
    json failing = d;
    failing["status"]["conditions"] =
        json::array({{{"type", "Available"},
                      {"status", "False"},
                      {"lastTransitionTime", "2024-01-01T00:00:00Z"}}});
    EXPECT_EQ((*condition(simulatedStatus(failing, kT2), "Available"))["lastTransitionTime"], kT2);
}

TEST(SimulatedStatus, StatefulSetDaemonSetReplicaSet) {
    json sts = {{"apiVersion", "apps/v1"},
                {"kind", "StatefulSet"},
                {"metadata", {{"name", "db"}, {"generation", 3}}},
                {"spec", {{"replicas", 2}, {"template", json::object()}}}};
    json st = simulatedStatus(sts, kT1);
    EXPECT_EQ(st["observedGeneration"], 3);
    for (const char* f :
         {"replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"})
        EXPECT_EQ(st[f], 2) << f;
    EXPECT_EQ(st["currentRevision"], st["updateRevision"]);
    EXPECT_EQ(st["currentRevision"].get<std::string>().rfind("db-", 0), 0u);

    json ds = {{"apiVersion", "apps/v1"},
               {"kind", "DaemonSet"},
               {"metadata", {{"name", "agent"}, {"generation", 5}}}};
    json dst = simulatedStatus(ds, kT1);
    EXPECT_EQ(dst["desiredNumberScheduled"], 1);
    EXPECT_EQ(dst["numberReady"], 1);
    EXPECT_EQ(dst["updatedNumberScheduled"], 1);
    EXPECT_EQ(dst["numberAvailable"], 1);
    EXPECT_EQ(dst["observedGeneration"], 5);

    json rs = {{"apiVersion", "apps/v1"},
               {"kind", "ReplicaSet"},
               {"metadata", {{"name", "r"}}},
               {"spec", {{"replicas", 4}}}};
    json rst = simulatedStatus(rs, kT1);
    EXPECT_EQ(rst["replicas"], 4);
    EXPECT_EQ(rst["readyReplicas"], 4);
    EXPECT_EQ(rst["availableReplicas"], 4);
}

TEST(SimulatedStatus, JobCompletes) {
    json job = {{"apiVersion", "batch/v1"},
                {"kind", "Job"},
                {"metadata", {{"name", "j"}}},
                {"spec", {{"completions", 3}}}};
    json st = simulatedStatus(job, kT1);
    EXPECT_EQ(st["succeeded"], 3);
    EXPECT_EQ(st["completionTime"], kT1);
    EXPECT_EQ((*condition(st, "Complete"))["status"], "True");
    job["status"] = st;
    EXPECT_EQ(simulatedStatus(job, kT2)["completionTime"], kT1);

    json single = {{"apiVersion", "batch/v1"},
                   {"kind", "Job"},
                   {"metadata", {{"name", "s"}}},
                   {"spec", json::object()}};
    EXPECT_EQ(simulatedStatus(single, kT1)["succeeded"], 1);

    // A container that exits non-zero: the Job fails after its backoff limit.
    json failing = single;
    failing["spec"]["backoffLimit"] = 1;
    failing["spec"]["template"]["spec"]["containers"] =
        json::array({{{"name", "t"}, {"command", {"sh", "-c"}}, {"args", {"exit 3"}}}});
    json fst = simulatedStatus(failing, kT1);
    EXPECT_EQ(fst["failed"], 2);
    EXPECT_FALSE(fst.contains("succeeded"));
    EXPECT_EQ((*condition(fst, "Failed"))["reason"], "BackoffLimitExceeded");
    failing["spec"]["template"]["spec"]["containers"][0] = {{"name", "t"}, {"command", {"false"}}};
    EXPECT_EQ((*condition(simulatedStatus(failing, kT1), "Failed"))["status"], "True");
    failing["spec"]["template"]["spec"]["containers"][0]["command"] = {"sh", "-c", "exit 0"};
    EXPECT_EQ((*condition(simulatedStatus(failing, kT1), "Complete"))["status"], "True");

    json suspended = single;
    suspended["spec"]["suspend"] = true;
    json ss = simulatedStatus(suspended, kT1);
    EXPECT_FALSE(ss.contains("succeeded"));
    EXPECT_EQ((*condition(ss, "Suspended"))["status"], "True");
}

TEST(SimulatedStatus, PodRunningAndReady) {
    json pod = {
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata", {{"name", "p"}}},
        {"spec",
         {{"containers",
           {{{"name", "a"}, {"image", "nginx:1"}}, {{"name", "b"}, {"image", "busybox"}}}}}}};
    json st = simulatedStatus(pod, kT1);
    EXPECT_EQ(st["phase"], "Running");
    EXPECT_EQ((*condition(st, "Ready"))["status"], "True");
    ASSERT_EQ(st["containerStatuses"].size(), 2u);
    for (const auto& cs : st["containerStatuses"]) {
        EXPECT_EQ(cs["ready"], true);
        EXPECT_TRUE(cs["state"].contains("running"));
    }
    EXPECT_EQ(st["containerStatuses"][1]["image"], "busybox");
    EXPECT_FALSE(st["podIP"].get<std::string>().empty());
    pod["status"] = st;
    EXPECT_EQ(simulatedStatus(pod, kT2)["startTime"], kT1);
    EXPECT_EQ((*condition(simulatedStatus(pod, kT2), "Ready"))["lastTransitionTime"], kT1);
}

TEST(SimulatedStatus, ServicePvcAndUnsimulatedKinds) {
    json lb = {{"apiVersion", "v1"},
               {"kind", "Service"},
               {"metadata", {{"name", "s"}}},
               {"spec", {{"type", "LoadBalancer"}}}};
    EXPECT_EQ(simulatedStatus(lb, kT1),
              R"({"loadBalancer":{"ingress":[{"ip":"127.0.0.1","ipMode":"VIP"}]}})"_json);
    json cip = lb;
    cip["spec"]["type"] = "ClusterIP";
    EXPECT_TRUE(simulatedStatus(cip, kT1).is_null());

    json pvc = {{"apiVersion", "v1"},
                {"kind", "PersistentVolumeClaim"},
                {"metadata", {{"name", "data"}}},
                {"spec",
                 {{"accessModes", {"ReadWriteOnce"}},
                  {"resources", {{"requests", {{"storage", "1Gi"}}}}}}}};
    json pst = simulatedStatus(pvc, kT1);
    EXPECT_EQ(pst["phase"], "Bound");
    EXPECT_EQ(pst["capacity"]["storage"], "1Gi");

    EXPECT_TRUE(simulatedStatus({{"apiVersion", "v1"}, {"kind", "ConfigMap"}}, kT1).is_null());
    EXPECT_TRUE(
        simulatedStatus({{"apiVersion", "example.com/v1"}, {"kind", "Deployment"}}, kT1).is_null());
    EXPECT_TRUE(simulatedStatus(json::array(), kT1).is_null());
}

}  // namespace
}  // namespace sluice::apilogic
