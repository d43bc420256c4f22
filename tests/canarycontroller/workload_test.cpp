// The pure helpers of the Canary controller: template hash and the primary Deployment or
// DaemonSet.
#include <gtest/gtest.h>

#include "sluice/canarycontroller/controller.h"

namespace sluice::canarycontroller {
namespace {

using nlohmann::json;

json target() {
    return json::parse(R"({
      "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "x", "namespace": "ns", "generation": 3, "resourceVersion": "7",
                   "labels": {"app": "x", "team": "a", "app.kubernetes.io/instance": "shop"},
                   "annotations": {"sluice.io/tracking-id": "shop:apps/Deployment:ns/x",
                                   "note": "kept"}},
      "spec": {"replicas": 3, "minReadySeconds": 5,
               "selector": {"matchLabels": {"app": "x"}},
               "template": {"metadata": {"labels": {"app": "x"}},
                            "spec": {"containers": [{"name": "app", "image": "i:1"}]}}},
      "status": {"readyReplicas": 3}
    })");
}

TEST(PodTemplateHash, IsTheSha256OfTheCanonicalTemplate) {
    // sha256('{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"image":"i:1","name":"app"}]}}')
    EXPECT_EQ(podTemplateHash(target()), "c59fcdc2bfea5969");
    json moved = target();
    moved["spec"]["replicas"] = 0;
    moved["metadata"]["resourceVersion"] = "8";
    moved["status"] = json::object();
    EXPECT_EQ(podTemplateHash(moved), podTemplateHash(target()));
    moved["spec"]["template"]["spec"]["containers"][0]["image"] = "i:2";
    EXPECT_NE(podTemplateHash(moved), podTemplateHash(target()));
    EXPECT_EQ(podTemplateHash(json::object()), "");
}

TEST(PrimaryDeployment, CopiesTheTargetWithThePrimaryLabel) {
    json p = primaryDeploymentFor(target(), "x-primary", "app", "x", 2);
    EXPECT_EQ(p["metadata"]["name"], "x-primary");
    EXPECT_EQ(p["metadata"]["namespace"], "ns");
    EXPECT_EQ(p["metadata"]["labels"], json({{"app", "x-primary"}, {"team", "a"}}));
    EXPECT_EQ(p["metadata"]["annotations"], json({{"note", "kept"}}));
    EXPECT_FALSE(p["metadata"].contains("resourceVersion"));
    EXPECT_FALSE(p.contains("status"));
    EXPECT_EQ(p["spec"]["replicas"], 2);
    EXPECT_EQ(p["spec"]["minReadySeconds"], 5);
    EXPECT_EQ(p["spec"]["selector"], json({{"matchLabels", {{"app", "x-primary"}}}}));
    EXPECT_EQ(p["spec"]["template"]["metadata"]["labels"], json({{"app", "x-primary"}}));
    EXPECT_EQ(p["spec"]["template"]["spec"], target()["spec"]["template"]["spec"]);
}

// A DaemonSet target at rest: scaled to zero by the node selector no node has.
json daemonSetAtZero() {
    json d = target();
    d["kind"] = "DaemonSet";
    d["spec"].erase("replicas");
    d["spec"]["updateStrategy"] = {{"type", "RollingUpdate"}};
    d["spec"]["template"]["spec"]["nodeSelector"] = {{kScaleToZeroNodeSelector, "true"}};
    return d;
}

TEST(PodTemplateHash, LeavesOutTheScaleToZeroNodeSelector) {
    EXPECT_EQ(podTemplateHash(daemonSetAtZero()), podTemplateHash(target()));
    json pinned = daemonSetAtZero();
    pinned["spec"]["template"]["spec"]["nodeSelector"]["disk"] = "ssd";
    json running = target();
    running["spec"]["template"]["spec"]["nodeSelector"] = {{"disk", "ssd"}};
    EXPECT_EQ(podTemplateHash(pinned), podTemplateHash(running));
    EXPECT_NE(podTemplateHash(pinned), podTemplateHash(target()));
}

TEST(PrimaryDaemonSet, CopiesTheTargetToRunOnItsNodes) {
    json p = primaryDaemonSetFor(daemonSetAtZero(), "x-primary", "app", "x");
    EXPECT_EQ(p["kind"], "DaemonSet");
    EXPECT_EQ(p["metadata"]["name"], "x-primary");
    EXPECT_EQ(p["metadata"]["labels"], json({{"app", "x-primary"}, {"team", "a"}}));
    EXPECT_FALSE(p["spec"].contains("replicas"));
    EXPECT_EQ(p["spec"]["minReadySeconds"], 5);
    EXPECT_EQ(p["spec"]["updateStrategy"], json({{"type", "RollingUpdate"}}));
    EXPECT_EQ(p["spec"]["selector"], json({{"matchLabels", {{"app", "x-primary"}}}}));
    // The target's scale-to-zero selector stays on the target.
    EXPECT_EQ(p["spec"]["template"]["spec"], target()["spec"]["template"]["spec"]);
    json pinned = daemonSetAtZero();
    pinned["spec"]["template"]["spec"]["nodeSelector"]["disk"] = "ssd";
    EXPECT_EQ(primaryDaemonSetFor(pinned, "x-primary", "app",
                                  "x")["spec"]["template"]["spec"]["nodeSelector"],
              json({{"disk", "ssd"}}));
}

}  // namespace
}  // namespace sluice::canarycontroller
