// The Application controller and the real Canary controller against one API server: git holds
// a Deployment and the Canary that targets it. The two must not fight over the target (the
// Canary scales it, the Application leaves its replicas alone even with self-heal), the
// objects the Canary generates are never pruned, and the Application's health follows the
// canary's analysis.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>

#include "harness.h"
#include "sluice/canarycontroller/controller.h"
#include "sluice/metricprovider/provider.h"

namespace sluice::apptest {
namespace {

const kube::GroupVersionKind kCanaryGvk{"sluice.io", "v1alpha1", "Canary"};

// A blue-green Canary (provider kubernetes): three passing iterations of a second each, then
// the switch; two failed checks roll it back.
std::string canaryYaml(const std::string& target) {
    json canary = {
        {"apiVersion", "sluice.io/v1alpha1"},
        {"kind", "Canary"},
        {"metadata", {{"name", target}}},
        {"spec",
         {{"provider", "kubernetes"},
          {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", target}}},
          {"progressDeadlineSeconds", 120},
          {"service", {{"port", 80}, {"targetPort", 9898}}},
          {"analysis",
           {{"interval", "1s"},
            {"threshold", 2},
            {"iterations", 3},
            {"metrics", json::array({{{"name", "request-success-rate"},
                                      {"thresholdRange", {{"min", 99}}}}})}}}}}};
    return canary.dump(2);  // JSON is YAML
}

class CanaryTogetherTest : public ControllerTest {
  protected:
    void SetUp() override {
        ControllerTest::SetUp();
        for (const char* file :
             {"crds/sluice.io_canaries.yaml", "crds/sluice.io_metrictemplates.yaml"})
            server_->createFromFile(testing::sourcePath(file));
        ASSERT_TRUE(eventually([&] {
            try {
                client_->resourceFor(kCanaryGvk);
                return true;
            } catch (const std::exception&) {
                return false;
            }
        }));
        metrics_ = std::make_shared<metricprovider::ScriptedMetricProvider>();
        setSuccessRate(100);
    }

    void TearDown() override {
        canaries_.reset();
        ControllerTest::TearDown();
    }

    // The kubernetes provider's built-in success rate query excludes 5xx with "!~".
    void setSuccessRate(double percent) {
        metrics_->whenQueryContains("!~", canaryengine::MetricResult::measured(percent));
    }

    void startCanaryController() {
        canarycontroller::Options o;
        o.concurrency = 2;
        o.metricsServer = "http://prometheus.test:9090";
        auto provider = metrics_;
        o.metricProviders = [provider](const metricprovider::ClientOptions&)
            -> std::shared_ptr<metricprovider::MetricProvider> { return provider; };
        canaries_ = std::make_unique<canarycontroller::CanaryController>(*client_, *factory_, o);
        canaries_->start();
        ASSERT_TRUE(canaries_->waitForSync(30s));
    }

    void startApplicationController() {
        appcontroller::Options o = defaultOptions();
        o.pollInterval = 300ms;  // new commits are seen without a webhook
        makeController(o);
        controller_->setObserver([this](const appcontroller::ReconcileRecord&) { reconciles_++; });
        controller_->start();
        ASSERT_TRUE(controller_->waitForSync(30s));
    }

    std::string canaryPhase(const std::string& name) {
        auto c = object("sluice.io/v1alpha1", "Canary", name);
        return c ? at(*c, "/status/phase") : "";
    }
    std::string imageOf(const std::string& name) {
        auto d = object("apps/v1", "Deployment", name);
        return d ? at(*d, "/spec/template/spec/containers/0/image") : "";
    }
    int replicasOf(const std::string& name) {
        auto d = object("apps/v1", "Deployment", name);
        if (!d) return -1;
        return (*d)["spec"].value("replicas", 1);
    }
    // The field managers owning spec.replicas of a Deployment.
    std::set<std::string> replicasOwners(const std::string& name) {
        std::set<std::string> out;
        auto d = object("apps/v1", "Deployment", name);
        if (!d) return out;
        for (const auto& mf : (*d)["metadata"].value("managedFields", json::array())) {
            const json::json_pointer p("/fieldsV1/f:spec/f:replicas");
            if (mf.contains(p)) out.insert(mf.value("manager", ""));
        }
        return out;
    }
    std::string appHealth() { return statusAt("web", "/health/status"); }
    std::string appSync() { return statusAt("web", "/sync/status"); }

    std::shared_ptr<metricprovider::ScriptedMetricProvider> metrics_;
    std::unique_ptr<canarycontroller::CanaryController> canaries_;
    std::atomic<uint64_t> reconciles_{0};
};

TEST_F(CanaryTogetherTest, NoFightOverTheTargetNothingGeneratedIsPrunedHealthFollowsTheCanary) {
    // A team annotation the primary inherits; the tracking annotation it must not.
    const std::string deployV1 =
        deploymentYaml("web", "example/app:1.0", 2, "    team: payments\n");
    git_.commit(kRepo, {{"web/deploy.yaml", deployV1},
                        {"web/canary.yaml", canaryYaml("web")},
                        {"web/config.yaml", configMapYaml("settings", "a")}});
    ASSERT_NO_FATAL_FAILURE(startCanaryController());
    ASSERT_NO_FATAL_FAILURE(startApplicationController());
    server_->create(application("web", "web", automated(/*prune=*/true, /*selfHeal=*/true)));

    // Initialisation: the primary takes git's two replicas, the target rests at zero.
    ASSERT_TRUE(eventually([&] { return canaryPhase("web") == "Initialized"; }, 60s))
        << object("sluice.io/v1alpha1", "Canary", "web")->dump(2);
    ASSERT_TRUE(eventually(
        [&] { return replicasOf("web") == 0 && appSync() == "Synced" && appHealth() == "Healthy"; },
        60s))
        << status("web").dump(2);
    auto primary = object("apps/v1", "Deployment", "web-primary");
    ASSERT_TRUE(primary);
    EXPECT_EQ((*primary)["spec"].value("replicas", -1), 2);
    EXPECT_EQ(at(*primary, "/metadata/annotations/team"), "payments");
    EXPECT_EQ(at(*primary, "/metadata/annotations/sluice.io~1tracking-id"), "");
    EXPECT_EQ(
        at(*object("apps/v1", "Deployment", "web"), "/metadata/annotations/sluice.io~1tracking-id"),
        "web:apps/Deployment:demo/web");
    const std::string primaryUid = at(*primary, "/metadata/uid");

    // No fight: with self-heal on, compares after the scale-down change nothing on the target.
    // Every spec write bumps metadata.generation; the replicas stay the Canary's.
    const uint64_t driftBefore = controller_->stats().driftCorrections;
    const uint64_t reconcilesBefore = reconciles_;
    controller_->refresh(kControlNs, "web");
    ASSERT_TRUE(eventually([&] { return reconciles_ >= reconcilesBefore + 3; }, 60s));
    const std::string generation =
        at(*object("apps/v1", "Deployment", "web"), "/metadata/generation");
    std::set<int> replicasSeen;
    const auto quietUntil = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < quietUntil) {
        replicasSeen.insert(replicasOf("web"));
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(replicasSeen, std::set<int>{0});
    EXPECT_EQ(at(*object("apps/v1", "Deployment", "web"), "/metadata/generation"), generation);
    EXPECT_EQ(controller_->stats().driftCorrections, driftBefore);
    EXPECT_GE(reconciles_, reconcilesBefore + 3);
    EXPECT_EQ(replicasOwners("web"), std::set<std::string>{"sluice-canary"});
    EXPECT_EQ(appSync(), "Synced");
    const json synced = status("web");
    for (const auto& r : synced["resources"])
        EXPECT_EQ(r.value("status", ""), "Synced") << r.dump();

    // Prune: the ConfigMap leaves git and is pruned; what the Canary generated stays.
    git_.commit(kRepo, {{"web/deploy.yaml", deployV1}, {"web/canary.yaml", canaryYaml("web")}});
    ASSERT_TRUE(eventually([&] { return !object("v1", "ConfigMap", "settings"); }, 60s))
        << status("web").dump(2);
    ASSERT_TRUE(eventually([&] { return appSync() == "Synced"; }, 60s));
    primary = object("apps/v1", "Deployment", "web-primary");
    ASSERT_TRUE(primary);
    EXPECT_EQ(at(*primary, "/metadata/uid"), primaryUid);
    EXPECT_FALSE(primary->contains("/metadata/deletionTimestamp"_json_pointer));
    for (const char* svc : {"web", "web-primary", "web-canary"}) {
        auto s = object("v1", "Service", svc);
        ASSERT_TRUE(s) << svc;
        EXPECT_EQ(at(*s, "/metadata/annotations/sluice.io~1tracking-id"), "") << svc;
    }
    const json afterPrune = status("web");
    for (const auto& r : afterPrune["resources"])
        EXPECT_NE(r.value("name", ""), "web-primary") << r.dump();
    for (const auto& e : afterPrune["inventory"])
        EXPECT_NE(e.value("name", ""), "web-primary") << e.dump();

    // A new image: the Application syncs it, the Canary analyses it, and the Application is
    // Progressing while it does.
    const uint64_t driftBeforeAnalysis = controller_->stats().driftCorrections;
    git_.commit(kRepo, {{"web/deploy.yaml",
                         deploymentYaml("web", "example/app:2.0", 2, "    team: payments\n")},
                        {"web/canary.yaml", canaryYaml("web")}});
    ASSERT_TRUE(eventually(
        [&] { return canaryPhase("web") == "Progressing" && appHealth() == "Progressing"; }, 90s))
        << status("web").dump(2);
    ASSERT_TRUE(eventually(
        [&] {
            return canaryPhase("web") == "Succeeded" &&
                   imageOf("web-primary") == "example/app:2.0" && replicasOf("web") == 0 &&
                   appHealth() == "Healthy" && appSync() == "Synced";
        },
        90s))
        << status("web").dump(2) << object("sluice.io/v1alpha1", "Canary", "web")->dump(2);
    EXPECT_EQ(imageOf("web"), "example/app:2.0");
    // The scale-up and the scale-down during the analysis were never undone.
    EXPECT_EQ(controller_->stats().driftCorrections, driftBeforeAnalysis);
    EXPECT_EQ(replicasOwners("web"), std::set<std::string>{"sluice-canary"});

    // A failing image: rolled back, and the Application reports it Degraded.
    setSuccessRate(50);
    git_.commit(kRepo, {{"web/deploy.yaml",
                         deploymentYaml("web", "example/app:3.0", 2, "    team: payments\n")},
                        {"web/canary.yaml", canaryYaml("web")}});
    ASSERT_TRUE(eventually([&] { return canaryPhase("web") == "Failed"; }, 90s))
        << object("sluice.io/v1alpha1", "Canary", "web")->dump(2);
    ASSERT_TRUE(eventually([&] { return appHealth() == "Degraded"; }, 60s))
        << status("web").dump(2);
    EXPECT_TRUE(eventually([&] { return replicasOf("web") == 0; }, 60s));
    EXPECT_EQ(imageOf("web-primary"), "example/app:2.0");
    EXPECT_EQ(imageOf("web"), "example/app:3.0");
    EXPECT_TRUE(eventually([&] { return appSync() == "Synced"; }, 60s)) << status("web").dump(2);
    EXPECT_EQ(controller_->stats().driftCorrections, driftBeforeAnalysis);
    const json rolledBack = status("web");
    bool canaryDegraded = false;
    for (const auto& r : rolledBack["resources"])
        if (r.value("kind", "") == "Canary") canaryDegraded = at(r, "/health/status") == "Degraded";
    EXPECT_TRUE(canaryDegraded) << rolledBack["resources"].dump(2);
}

// A Canary that is not in git (created by hand) is found through the cluster: its target's
// replicas, scaled by the Canary controller's field manager, are not self-healed either.
TEST_F(CanaryTogetherTest, CanaryOnlyInTheClusterStillProtectsItsTarget) {
    git_.commit(kRepo, {{"web/deploy.yaml", deploymentYaml("web", "example/app:1.0", 2)}});
    ASSERT_NO_FATAL_FAILURE(startApplicationController());
    server_->create(application("web", "web", automated(true, true)));
    ASSERT_TRUE(eventually([&] { return appSync() == "Synced"; })) << status("web").dump(2);
    EXPECT_EQ(replicasOf("web"), 2);

    const uint64_t reconcilesBefore = reconciles_;
    json canary = yamlToJson(canaryYaml("web"));
    canary["metadata"]["namespace"] = kDestNs;
    server_->create(canary);
    // The Application controller reads Canaries from the shared Canary informer (all
    // namespaces): once it holds this one, the scale-down below is the Canary's.
    cache::Informer& canaryInformer = factory_->informerFor(kCanaryGvk);
    ASSERT_TRUE(eventually([&] { return canaryInformer.store().get(kDestNs, "web") != nullptr; }));
    // The new Canary has every Application compared again.
    ASSERT_TRUE(eventually([&] { return reconciles_ > reconcilesBefore; }));
    // As the Canary controller scales its target (no Canary controller runs here).
    kube::PatchOptions po;
    po.fieldManager = "sluice-canary";
    client_->patch(kDeploymentGvk, kDestNs, "web", kube::PatchType::Merge,
                   R"({"spec":{"replicas":0}})", po);

    const uint64_t afterScale = reconciles_;
    controller_->refresh(kControlNs, "web");
    ASSERT_TRUE(eventually([&] { return reconciles_ >= afterScale + 2; }));
    std::set<int> replicasSeen;
    const auto quietUntil = std::chrono::steady_clock::now() + 2s;
    while (std::chrono::steady_clock::now() < quietUntil) {
        replicasSeen.insert(replicasOf("web"));
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(replicasSeen, std::set<int>{0});
    EXPECT_EQ(controller_->stats().driftCorrections, 0u);
    EXPECT_EQ(replicasOwners("web"), std::set<std::string>{"sluice-canary"});
    EXPECT_TRUE(eventually([&] { return appSync() == "Synced"; })) << status("web").dump(2);

    // Other fields are still git's: an edited image is put back.
    json patch = json::array({{{"op", "replace"},
                               {"path", "/spec/template/spec/containers/0/image"},
                               {"value", "example/app:hotfix"}}});
    client_->patch(kDeploymentGvk, kDestNs, "web", kube::PatchType::JsonPatch, patch.dump());
    EXPECT_TRUE(eventually([&] { return imageOf("web") == "example/app:1.0"; }))
        << status("web").dump(2);
    EXPECT_EQ(replicasOf("web"), 0);
}

// Without the Canary CRD the Application controller works as before: the Deployment is synced
// and its replicas are self-healed like any field.
TEST_F(ControllerTest, WithoutTheCanaryCrdReplicasAreSelfHealed) {
    git_.commit(kRepo, {{"web/deploy.yaml", deploymentYaml("web", "example/app:1.0", 2)}});
    appcontroller::Options o = defaultOptions();
    startController(o);
    server_->create(application("web", "web", automated(true, true)));
    ASSERT_TRUE(eventually([&] { return statusAt("web", "/sync/status") == "Synced"; }))
        << status("web").dump(2);
    client_->patch(kDeploymentGvk, kDestNs, "web", kube::PatchType::Merge,
                   R"({"spec":{"replicas":0}})");
    ASSERT_TRUE(eventually([&] {
        auto d = object("apps/v1", "Deployment", "web");
        return d && (*d)["spec"].value("replicas", -1) == 2;
    })) << status("web").dump(2);
    EXPECT_GE(controller_->stats().driftCorrections, 1u);
}

}  // namespace
}  // namespace sluice::apptest
