// A Canary whose target is a DaemonSet, against the in-process API server (whose one node has
// the kubernetes.io/{arch,hostname,os} labels only): the `<name>-primary` DaemonSet, the target
// scaled to zero with a node selector no node has, blue-green analysis and rollback.
#include "harness.h"

namespace sluice::canarytest {
namespace {

using canaryengine::MetricResult;

const kube::GroupVersionKind kDaemonSetGvk{"apps", "v1", "DaemonSet"};

json daemonSet(const std::string& name, const std::string& image) {
    json d = testing::deploymentObject(name, image, 1, kNs);
    d["kind"] = "DaemonSet";
    d["spec"].erase("replicas");
    d["spec"]["template"]["spec"]["nodeSelector"] = {{"kubernetes.io/os", "linux"}};
    return d;
}

// A blue-green Canary (kubernetes provider) of two iterations of the success rate.
json blueGreenCanary(const std::string& name) {
    return {{"apiVersion", "sluice.io/v1alpha1"},
            {"kind", "Canary"},
            {"metadata", {{"name", name}, {"namespace", kNs}}},
            {"spec",
             {{"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "DaemonSet"}, {"name", name}}},
              {"progressDeadlineSeconds", 60},
              {"service", {{"port", 80}, {"targetPort", 9898}}},
              {"analysis",
               {{"interval", "1s"},
                {"threshold", 2},
                {"iterations", 2},
                {"metrics", json::array({{{"name", "request-success-rate"},
                                          {"thresholdRange", {{"min", 99}}}}})}}}}}};
}

class DaemonSetCanaryTest : public CanaryControllerTest {
  protected:
    std::optional<json> daemonSetObject(const std::string& name) {
        return object("apps/v1", "DaemonSet", name);
    }
    std::string dsImage(const std::string& name) {
        auto d = daemonSetObject(name);
        return d ? (*d)["spec"]["template"]["spec"]["containers"][0].value("image", "") : "";
    }
    json nodeSelector(const std::string& name) {
        auto d = daemonSetObject(name);
        return d ? (*d)["spec"]["template"]["spec"].value("nodeSelector", json()) : json();
    }
    // The target runs no pod: its scale-to-zero node selector matches no node.
    bool atZero(const std::string& name) {
        auto d = daemonSetObject(name);
        return d && nodeSelector(name).contains(canarycontroller::kScaleToZeroNodeSelector) &&
               (*d)["status"].value("desiredNumberScheduled", -1) == 0;
    }
    std::string apexSelects(const std::string& name) {
        auto s = object("v1", "Service", name);
        return s ? (*s)["spec"]["selector"].value("app", "") : std::string();
    }
    void setDsImage(const std::string& name, const std::string& image) {
        json patch = json::array({{{"op", "replace"},
                                   {"path", "/spec/template/spec/containers/0/image"},
                                   {"value", image}}});
        client_->patch(kDaemonSetGvk, kNs, name, kube::PatchType::JsonPatch, patch.dump());
    }
    void initialiseDaemonSet(const std::string& name) {
        server_->create(daemonSet(name, "example/agent:1.0"));
        server_->create(blueGreenCanary(name));
        ASSERT_TRUE(eventually([&] { return phase(name) == "Initialized"; }))
            << status(name).dump(2);
    }
};

TEST_F(DaemonSetCanaryTest, InitialisationCopiesThePrimaryAndScalesTheTargetToZero) {
    healthyMetrics();
    startController();
    ASSERT_NO_FATAL_FAILURE(initialiseDaemonSet("agent"));

    auto primary = daemonSetObject("agent-primary");
    ASSERT_TRUE(primary);
    EXPECT_EQ(dsImage("agent-primary"), "example/agent:1.0");
    EXPECT_EQ((*primary)["spec"]["selector"]["matchLabels"], json({{"app", "agent-primary"}}));
    EXPECT_EQ((*primary)["metadata"]["ownerReferences"][0].value("kind", ""), "Canary");
    // The primary runs where the target would, the target nowhere.
    EXPECT_EQ(nodeSelector("agent-primary"), json({{"kubernetes.io/os", "linux"}}));
    EXPECT_EQ((*primary)["status"].value("numberReady", 0), 1);
    EXPECT_TRUE(eventually([&] { return atZero("agent"); })) << nodeSelector("agent").dump();
    EXPECT_EQ(nodeSelector("agent")["kubernetes.io/os"], "linux");
    EXPECT_EQ(apexSelects("agent"), "agent-primary");
    // No Deployment is involved.
    EXPECT_FALSE(deploymentObject("agent-primary"));
    // The scale-to-zero selector is not a new revision: nothing moves at rest.
    const std::string applied = status("agent").value("lastAppliedSpec", "");
    EXPECT_EQ(applied, canarycontroller::podTemplateHash(*daemonSetObject("agent")));
    std::this_thread::sleep_for(2500ms);
    EXPECT_EQ(phase("agent"), "Initialized");
    EXPECT_EQ(status("agent").value("lastAppliedSpec", ""), applied);
    EXPECT_EQ(controller_->stats().errors, 0u);
}

TEST_F(DaemonSetCanaryTest, ANewRevisionIsAnalysedAndPromoted) {
    healthyMetrics();
    startController();
    ASSERT_NO_FATAL_FAILURE(initialiseDaemonSet("agent"));
    ASSERT_TRUE(eventually([&] { return atZero("agent"); }));

    setDsImage("agent", "example/agent:2.0");
    ASSERT_TRUE(eventually([&] { return phase("agent") == "Progressing"; }))
        << status("agent").dump(2);
    // Analysed while running on its nodes again.
    EXPECT_TRUE(eventually([&] {
        return !nodeSelector("agent").contains(canarycontroller::kScaleToZeroNodeSelector);
    }));
    ASSERT_TRUE(eventually([&] { return phase("agent") == "Succeeded"; }))
        << status("agent").dump(2);
    EXPECT_EQ(dsImage("agent-primary"), "example/agent:2.0");
    EXPECT_EQ(nodeSelector("agent-primary"), json({{"kubernetes.io/os", "linux"}}));
    EXPECT_TRUE(eventually([&] { return atZero("agent"); }));
    EXPECT_EQ(apexSelects("agent"), "agent-primary");
    EXPECT_TRUE(sawAction("ScaleTarget(1)"));
    EXPECT_TRUE(hasEventContaining("Advance", "canary iteration 1/2"));
}

TEST_F(DaemonSetCanaryTest, AFailingCheckRollsBack) {
    metrics_->whenQueryContains("!~", MetricResult::measured(90));
    startController();
    ASSERT_NO_FATAL_FAILURE(initialiseDaemonSet("agent"));

    setDsImage("agent", "example/agent:2.0");
    ASSERT_TRUE(eventually([&] { return phase("agent") == "Failed"; })) << status("agent").dump(2);
    EXPECT_EQ(dsImage("agent-primary"), "example/agent:1.0");
    EXPECT_TRUE(eventually([&] { return atZero("agent"); }));
    EXPECT_EQ(apexSelects("agent"), "agent-primary");
    EXPECT_TRUE(hasEventContaining("RollingBack", "failed checks threshold reached 2"));
}

TEST_F(DaemonSetCanaryTest, CanaryWeightsAreAnInvalidSpec) {
    startController();
    server_->create(daemonSet("agent", "example/agent:1.0"));
    json canary = blueGreenCanary("agent");
    canary["spec"]["analysis"].erase("iterations");
    canary["spec"]["analysis"]["stepWeight"] = 20;
    server_->create(canary);
    ASSERT_TRUE(eventually([&] { return !events("InvalidSpec").empty(); }));
    EXPECT_TRUE(hasEventContaining("InvalidSpec", "canary weights need a Deployment target"));
    std::this_thread::sleep_for(1500ms);
    EXPECT_FALSE(daemonSetObject("agent-primary"));
    EXPECT_TRUE(nodeSelector("agent") == json({{"kubernetes.io/os", "linux"}}));
}

TEST_F(DaemonSetCanaryTest, AnOnDeleteDaemonSetIsRefused) {
    startController();
    json target = daemonSet("agent", "example/agent:1.0");
    target["spec"]["updateStrategy"] = {{"type", "OnDelete"}};
    server_->create(target);
    server_->create(blueGreenCanary("agent"));
    ASSERT_TRUE(eventually([&] { return !events("InvalidSpec").empty(); }));
    EXPECT_TRUE(hasEventContaining("InvalidSpec", "must be RollingUpdate, not OnDelete"));
    std::this_thread::sleep_for(1000ms);
    EXPECT_FALSE(daemonSetObject("agent-primary"));
}

}  // namespace
}  // namespace sluice::canarytest
