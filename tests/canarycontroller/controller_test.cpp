// The Canary controller against the in-process API server with the shipped CRDs: scripted
// metric values, a real local webhook receiver, 1 s analysis intervals.
#include <algorithm>

#include "harness.h"

namespace sluice::canarytest {
namespace {

using canaryengine::MetricResult;

// Canary weights of every SetWeights the controller carried out, in order.
std::vector<int> canaryWeightsSet(const std::vector<std::string>& actions) {
    std::vector<int> out;
    const std::string marker = "canary=";
    for (const auto& a : actions) {
        if (a.rfind("SetWeights(", 0) != 0) continue;
        out.push_back(std::stoi(a.substr(a.find(marker) + marker.size())));
    }
    return out;
}

TEST_F(CanaryControllerTest, InitializationCreatesPrimaryServicesAndRoutesAndScalesTargetDown) {
    startController();
    ASSERT_NO_FATAL_FAILURE(initialise(gatewayCanary("podinfo", "podinfo"), "podinfo"));

    const json canary = canaryObject("podinfo");
    const json st = canary["status"];
    EXPECT_EQ(st.value("canaryWeight", -1), 0);
    EXPECT_EQ(st.value("failedChecks", -1), 0);
    ASSERT_FALSE(st.value("lastAppliedSpec", "").empty());
    EXPECT_EQ(st.value("lastAppliedSpec", ""), st.value("lastPromotedSpec", ""));
    EXPECT_EQ(st.value("lastAppliedSpec", ""),
              canarycontroller::podTemplateHash(*deploymentObject("podinfo")));
    ASSERT_TRUE(st.contains("conditions"));
    EXPECT_EQ(st["conditions"][0].value("type", ""), "Promoted");
    EXPECT_EQ(st["conditions"][0].value("status", ""), "True");

    // The primary: a copy of the target with the primary label, owned by the Canary.
    auto primary = deploymentObject("podinfo-primary");
    ASSERT_TRUE(primary);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:1.0");
    EXPECT_EQ((*primary)["spec"]["selector"]["matchLabels"], json({{"app", "podinfo-primary"}}));
    EXPECT_EQ((*primary)["spec"]["template"]["metadata"]["labels"]["app"], "podinfo-primary");
    EXPECT_EQ((*primary)["spec"].value("replicas", 0), 2);
    ASSERT_TRUE((*primary)["metadata"].contains("ownerReferences"));
    const json owner = (*primary)["metadata"]["ownerReferences"][0];
    EXPECT_EQ(owner.value("kind", ""), "Canary");
    EXPECT_EQ(owner.value("uid", ""), canary["metadata"].value("uid", "?"));
    EXPECT_TRUE(owner.value("controller", false));

    // The three Services and the route, all traffic on the primary.
    for (const char* svc : {"podinfo", "podinfo-primary", "podinfo-canary"}) {
        auto s = object("v1", "Service", svc);
        ASSERT_TRUE(s) << svc;
        EXPECT_EQ((*s)["metadata"]["ownerReferences"][0].value("kind", ""), "Canary") << svc;
    }
    EXPECT_EQ((*object("v1", "Service", "podinfo-primary"))["spec"]["selector"]["app"],
              "podinfo-primary");
    EXPECT_EQ((*object("v1", "Service", "podinfo-canary"))["spec"]["selector"]["app"], "podinfo");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));

    // At rest the target runs no pods.
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 0; }));
    EXPECT_TRUE(hasEventContaining("Initialized", "Initialization done"));

    // Nothing more happens at rest: no further writes to the target or the primary.
    const std::string primaryVersion =
        kube::resourceVersionOf(*deploymentObject("podinfo-primary"));
    std::this_thread::sleep_for(2500ms);
    EXPECT_EQ(phase("podinfo"), "Initialized");
    EXPECT_EQ(kube::resourceVersionOf(*deploymentObject("podinfo-primary")), primaryVersion);
    EXPECT_EQ(controller_->stats().errors, 0u);
}

TEST_F(CanaryControllerTest, HealthyCanaryStepsWeightsAndIsPromoted) {
    healthyMetrics();
    startController();
    ASSERT_NO_FATAL_FAILURE(initialise(gatewayCanary("podinfo", "podinfo"), "podinfo"));
    const std::string before = status("podinfo").value("lastPromotedSpec", "");

    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Progressing"; }))
        << status("podinfo").dump(2);
    // During the analysis the target runs as many pods as the primary.
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 2; }));
    EXPECT_TRUE(eventually([&] { return routeWeights("podinfo") == std::make_pair(75, 25); }));

    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    const json st = status("podinfo");
    EXPECT_NE(st.value("lastPromotedSpec", ""), before);
    EXPECT_EQ(st.value("lastPromotedSpec", ""),
              canarycontroller::podTemplateHash(*deploymentObject("podinfo")));
    EXPECT_EQ(st.value("canaryWeight", -1), 0);
    EXPECT_EQ(st.value("failedChecks", -1), 0);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    EXPECT_EQ(
        (*deploymentObject("podinfo-primary"))["spec"]["template"]["metadata"]["labels"]["app"],
        "podinfo-primary");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_EQ(replicasOf("podinfo"), 0);

    // Weights went up by stepWeight to maxWeight, then all traffic to the canary while the
    // primary rolled out, then back to the primary.
    std::vector<int> weights = canaryWeightsSet(actions());
    auto at = [&](int w) { return std::find(weights.begin(), weights.end(), w); };
    ASSERT_NE(at(25), weights.end());
    ASSERT_NE(at(50), weights.end());
    ASSERT_NE(at(100), weights.end());
    EXPECT_LT(at(25), at(50));
    EXPECT_LT(at(50), at(100));
    EXPECT_EQ(weights.back(), 0);
    for (int w : weights) EXPECT_TRUE(w == 0 || w == 25 || w == 50 || w == 100) << w;

    // The built-in Envoy queries, rendered for this Canary, went to the default server.
    bool rendered = false;
    for (const auto& q : metrics_->queries())
        if (q.find("test_podinfo-canary_") != std::string::npos) rendered = true;
    EXPECT_TRUE(rendered);
    {
        std::lock_guard lock(addresses_->mu);
        ASSERT_FALSE(addresses_->seen.empty());
        for (const auto& a : addresses_->seen) EXPECT_EQ(a, "http://prometheus.test:9090");
    }
    EXPECT_TRUE(hasEventContaining("Promoted", "Promotion completed"));
    // Counted after the status write that shows the phase.
    EXPECT_TRUE(eventually([&] { return controller_->stats().promotions >= 1; }));

    // Each reconcile that ran the checks reports their values; the others report none.
    int checked = 0;
    for (const auto& r : records()) {
        const bool ran =
            std::find(r.actions.begin(), r.actions.end(), "RunMetricChecks") != r.actions.end();
        if (!ran) {
            EXPECT_TRUE(r.metrics.empty()) << r.key;
            continue;
        }
        ++checked;
        ASSERT_EQ(r.metrics.size(), 2u);
        EXPECT_TRUE(r.metrics.at("request-success-rate").hasValue());
        EXPECT_EQ(r.metrics.at("request-success-rate").value, 100);
        EXPECT_EQ(r.metrics.at("request-duration").value, 50);
    }
    EXPECT_GE(checked, 2);
}

TEST_F(CanaryControllerTest, FailingSuccessRateRollsBackAtThreshold) {
    metrics_->whenQueryContains("_bucket", MetricResult::measured(50));
    metrics_->whenQueryContains("!~", MetricResult::measured(90));
    startController();
    ASSERT_NO_FATAL_FAILURE(initialise(gatewayCanary("podinfo", "podinfo"), "podinfo"));

    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Failed"; }))
        << status("podinfo").dump(2);
    const json st = status("podinfo");
    EXPECT_EQ(st.value("failedChecks", -1), 2);
    EXPECT_EQ(st.value("canaryWeight", -1), 0);
    EXPECT_EQ(st["conditions"][0].value("status", ""), "False");
    // Traffic back on the last good primary, which was never touched; the canary scaled down.
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:1.0");
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 0; }));
    // The Events name the metric, its value and the threshold.
    EXPECT_TRUE(hasEventContaining("Halt", "request-success-rate 90 < 99"));
    EXPECT_TRUE(hasEventContaining("RollingBack", "failed checks threshold reached 2"));
    EXPECT_FALSE(sawAction("CopyTargetToPrimary(" + st.value("lastAppliedSpec", "") + ")"));
    // Counted, and the reconcile recorded, after the status write that shows the phase.
    EXPECT_TRUE(eventually([&] { return controller_->stats().rollbacks >= 1; }));
    // The failing value as the reconcile that measured it reports it; that same reconcile
    // judged it (no interval lost waiting for the next one).
    auto failingRecords = [&] {
        std::vector<canarycontroller::ReconcileRecord> out;
        for (const auto& r : records()) {
            auto it = r.metrics.find("request-success-rate");
            if (it != r.metrics.end() && it->second.hasValue() && it->second.value == 90)
                out.push_back(r);
        }
        return out;
    };
    EXPECT_TRUE(eventually([&] { return failingRecords().size() >= 2; }));
    int failing = 0;
    for (const auto& r : failingRecords()) {
        ++failing;
        bool halted = false;
        for (const auto& a : r.actions)
            if (a.find("EmitEvent(Warning, Halt, Halt advancement: request-success-rate 90 < 99") ==
                0)
                halted = true;
        EXPECT_TRUE(halted) << ::testing::PrintToString(r.actions);
    }
    EXPECT_GE(failing, 2);

    // A failed revision stays failed: nothing moves until the target changes again.
    std::this_thread::sleep_for(2s);
    EXPECT_EQ(phase("podinfo"), "Failed");
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:1.0");
}

TEST_F(CanaryControllerTest, NoDataHoldsTheCanaryWithoutPromotingOrFailing) {
    metrics_->whenQueryContains("_bucket", MetricResult::measured(50));
    metrics_->whenQueryContains("!~", MetricResult::noData("empty result"));
    startController();
    ASSERT_NO_FATAL_FAILURE(initialise(gatewayCanary("podinfo", "podinfo"), "podinfo"));

    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return status("podinfo").contains("noDataSince"); }))
        << status("podinfo").dump(2);
    EXPECT_NE(status("podinfo").value("noDataReason", "").find("request-success-rate"),
              std::string::npos);
    EXPECT_TRUE(eventually([&] { return !events("NoData").empty(); }));

    // Held: several intervals pass with no advance, no failed check and no promotion.
    std::this_thread::sleep_for(4s);
    json st = status("podinfo");
    EXPECT_EQ(st.value("phase", ""), "Progressing");
    EXPECT_EQ(st.value("canaryWeight", -1), 25);
    EXPECT_EQ(st.value("failedChecks", -1), 0);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:1.0");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(75, 25));
    for (int w : canaryWeightsSet(actions())) EXPECT_LE(w, 25);

    // Data comes back: the analysis carries on to the promotion.
    metrics_->whenQueryContains("!~", MetricResult::measured(100));
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    EXPECT_FALSE(status("podinfo").contains("noDataSince"));
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
}

TEST_F(CanaryControllerTest, BlueGreenWithKubernetesProviderSwitchesTheApexServiceAfterIterations) {
    healthyMetrics();
    startController();  // default provider: kubernetes
    json canary = {
        {"apiVersion", "sluice.io/v1alpha1"},
        {"kind", "Canary"},
        {"metadata", {{"name", "bluegreen"}, {"namespace", kNs}}},
        {"spec",
         {{"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "bluegreen"}}},
          {"service", {{"port", 80}, {"targetPort", 9898}}},
          {"analysis",
           {{"interval", "1s"},
            {"threshold", 2},
            {"iterations", 3},
            {"metrics",
             json::array({{{"name", "request-success-rate"}, {"thresholdRange", {{"min", 99}}}}})},
            {"webhooks", json::array({{{"name", "smoke"},
                                       {"type", "pre-rollout"},
                                       {"url", hooks_.url("/smoke")},
                                       {"timeout", "5s"}}})}}}}}};
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "bluegreen"));
    auto apexSelects = [&] {
        auto s = object("v1", "Service", "bluegreen");
        return s ? (*s)["spec"]["selector"].value("app", "") : std::string();
    };
    EXPECT_EQ(apexSelects(), "bluegreen-primary");

    setImage("bluegreen", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("bluegreen") == "Succeeded"; }))
        << status("bluegreen").dump(2);
    EXPECT_EQ(imageOf("bluegreen-primary"), "example/app:2.0");
    EXPECT_EQ(apexSelects(), "bluegreen-primary");
    EXPECT_EQ(replicasOf("bluegreen"), 0);

    // No partial weights, ever: the apex Service switches whole.
    for (int w : canaryWeightsSet(actions())) EXPECT_TRUE(w == 0 || w == 100) << w;
    // The iterations ran at weight 0 with the http observer's queries for this target.
    bool rendered = false;
    for (const auto& q : metrics_->queries())
        if (q.find("http_requests_total") != std::string::npos &&
            q.find("kubernetes_namespace=\"test\"") != std::string::npos &&
            q.find("bluegreen-") != std::string::npos)
            rendered = true;
    EXPECT_TRUE(rendered);
    EXPECT_TRUE(hasEventContaining("Advance", "canary iteration 2/3"));

    // The pre-rollout hook got Flagger's payload.
    auto smoke = hooks_.calls("/smoke");
    ASSERT_FALSE(smoke.empty());
    const json body = smoke.front().body;
    EXPECT_EQ(body.value("name", ""), "bluegreen");
    EXPECT_EQ(body.value("namespace", ""), kNs);
    EXPECT_EQ(body.value("phase", ""), "Progressing");
    EXPECT_EQ(body.value("checksum", ""), status("bluegreen").value("lastPromotedSpec", "?"));
}

TEST_F(CanaryControllerTest, ConfirmPromotionGateHoldsUntilApproved) {
    healthyMetrics();
    hooks_.setStatus("/gate", 403);
    startController();
    json hooks = json::array({{{"name", "approval"},
                               {"type", "confirm-promotion"},
                               {"url", hooks_.url("/gate")},
                               {"metadata", {{"ticket", "CHG-1"}}}}});
    ASSERT_NO_FATAL_FAILURE(initialise(gatewayCanary("podinfo", "podinfo", hooks), "podinfo"));

    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "WaitingPromotion"; }))
        << status("podinfo").dump(2);
    const size_t callsWhenWaiting = hooks_.calls("/gate").size();
    std::this_thread::sleep_for(3s);
    // Still held: metrics keep running, the gate is asked again, nothing is promoted.
    EXPECT_EQ(phase("podinfo"), "WaitingPromotion");
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:1.0");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(50, 50));
    EXPECT_GT(hooks_.calls("/gate").size(), callsWhenWaiting);
    EXPECT_TRUE(hasEventContaining("AwaitingApproval", "confirm-promotion approval"));

    const json body = hooks_.calls("/gate").back().body;
    EXPECT_EQ(body.value("name", ""), "podinfo");
    EXPECT_EQ(body.value("phase", ""), "WaitingPromotion");
    EXPECT_EQ(body.value("metadata", json::object()).value("ticket", ""), "CHG-1");
    EXPECT_EQ(body.value("checksum", ""),
              canarycontroller::podTemplateHash(*deploymentObject("podinfo")));

    hooks_.setStatus("/gate", 200);
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
}

TEST_F(CanaryControllerTest, ANewRevisionDuringAnalysisRestartsItAndOnlyTheLastIsPromoted) {
    healthyMetrics();
    hooks_.setStatus("/gate", 403);
    startController();
    json hooks = json::array(
        {{{"name", "approval"}, {"type", "confirm-promotion"}, {"url", hooks_.url("/gate")}}});
    ASSERT_NO_FATAL_FAILURE(initialise(gatewayCanary("podinfo", "podinfo", hooks), "podinfo"));

    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "WaitingPromotion"; }))
        << status("podinfo").dump(2);
    const std::string v2 = canarycontroller::podTemplateHash(*deploymentObject("podinfo"));

    setImage("podinfo", "example/app:3.0");
    const std::string v3 = canarycontroller::podTemplateHash(*deploymentObject("podinfo"));
    ASSERT_TRUE(
        eventually([&] { return hasEventContaining("NewRevision", "Restarting analysis"); }));
    EXPECT_TRUE(eventually([&] { return status("podinfo").value("lastAppliedSpec", "") == v3; }));
    hooks_.setStatus("/gate", 200);
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:3.0");
    EXPECT_EQ(status("podinfo").value("lastPromotedSpec", ""), v3);
    EXPECT_FALSE(sawAction("CopyTargetToPrimary(" + v2 + ")"));
    EXPECT_TRUE(sawAction("CopyTargetToPrimary(" + v3 + ")"));
}

TEST_F(CanaryControllerTest, RoutesEditedOrDeletedByHandAreRestored) {
    startController();
    ASSERT_NO_FATAL_FAILURE(initialise(gatewayCanary("podinfo", "podinfo"), "podinfo"));
    const kube::GroupVersionKind route{"gateway.networking.k8s.io", "v1", "HTTPRoute"};
    auto live = object("gateway.networking.k8s.io/v1", "HTTPRoute", "podinfo");
    ASSERT_TRUE(live);
    json patch = json::array();
    const json refs = (*live)["spec"]["rules"][0]["backendRefs"];
    for (size_t i = 0; i < refs.size(); ++i)
        patch.push_back({{"op", "replace"},
                         {"path", "/spec/rules/0/backendRefs/" + std::to_string(i) + "/weight"},
                         {"value", 50}});
    client_->patch(route, kNs, "podinfo", kube::PatchType::JsonPatch, patch.dump());
    ASSERT_EQ(routeWeights("podinfo"), std::make_pair(50, 50));
    EXPECT_TRUE(eventually([&] { return routeWeights("podinfo") == std::make_pair(100, 0); }));
    EXPECT_TRUE(eventually([&] { return !events("RoutingRestored").empty(); }));

    client_->remove(route, kNs, "podinfo");
    EXPECT_TRUE(eventually([&] { return routeWeights("podinfo") == std::make_pair(100, 0); }));
    EXPECT_EQ(phase("podinfo"), "Initialized");
}

TEST_F(CanaryControllerTest, ConfirmRolloutEventAndRollbackWebhooks) {
    healthyMetrics();
    hooks_.setStatus("/confirm", 403);
    hooks_.setStatus("/abort", 404);
    startController();
    json hooks = json::array(
        {{{"name", "confirm"}, {"type", "confirm-rollout"}, {"url", hooks_.url("/confirm")}},
         {{"name", "events"}, {"type", "event"}, {"url", hooks_.url("/events")}},
         {{"name", "abort"}, {"type", "rollback"}, {"url", hooks_.url("/abort")}}});
    ASSERT_NO_FATAL_FAILURE(initialise(gatewayCanary("podinfo", "podinfo", hooks), "podinfo"));

    // confirm-rollout closed: the new revision waits at zero replicas.
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Waiting"; }))
        << status("podinfo").dump(2);
    std::this_thread::sleep_for(2500ms);
    EXPECT_EQ(phase("podinfo"), "Waiting");
    EXPECT_EQ(replicasOf("podinfo"), 0);
    EXPECT_GE(hooks_.calls("/confirm").size(), 2u);

    // Approved: the canary scales up and takes traffic.
    hooks_.setStatus("/confirm", 200);
    ASSERT_TRUE(eventually([&] { return status("podinfo").value("canaryWeight", 0) > 0; }))
        << status("podinfo").dump(2);
    EXPECT_EQ(replicasOf("podinfo"), 2);

    // The rollback hook answering success is a manual abort.
    hooks_.setStatus("/abort", 200);
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Failed"; }))
        << status("podinfo").dump(2);
    EXPECT_TRUE(hasEventContaining("RollingBack", "manual webhook invoked (abort)"));
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:1.0");
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 0; }));

    // The event hook heard every step, with Flagger's event metadata.
    bool sawRollback = false;
    for (const auto& call : hooks_.calls("/events")) {
        const json meta = call.body.value("metadata", json::object());
        EXPECT_EQ(call.body.value("name", ""), "podinfo");
        EXPECT_TRUE(meta.contains("eventType"));
        EXPECT_TRUE(meta.contains("timestamp"));
        if (meta.value("eventMessage", "").find("manual webhook invoked") != std::string::npos)
            sawRollback = true;
    }
    EXPECT_TRUE(sawRollback);
}

TEST_F(CanaryControllerTest, MetricTemplateQueriesItsServerWithTheSecretsCredentials) {
    healthyMetrics();
    metrics_->whenQueryContains("custom_errors", MetricResult::measured(0.5));
    startController();
    server_->create({{"apiVersion", "v1"},
                     {"kind", "Secret"},
                     {"metadata", {{"name", "prom-auth"}, {"namespace", kNs}}},
                     {"stringData", {{"token", "s3cret"}}}});
    server_->create(
        {{"apiVersion", "sluice.io/v1alpha1"},
         {"kind", "MetricTemplate"},
         {"metadata", {{"name", "errors"}, {"namespace", kNs}}},
         {"spec",
          {{"provider",
            {{"type", "prometheus"},
             {"address", "http://prom.auth:9090"},
             {"secretRef", {{"name", "prom-auth"}}}}},
           {"query",
            "sum(rate(custom_errors{namespace=\"{{ namespace }}\", app=\"{{ target }}\", "
            "route=\"{{ variables.route }}\"}[{{ interval }}]))"}}}});
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["analysis"]["metrics"] =
        json::array({{{"name", "errors"},
                      {"templateRef", {{"name", "errors"}}},
                      {"templateVariables", {{"route", "/api"}}},
                      {"thresholdRange", {{"max", 1}}}}});
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);

    // Rendered with the Canary's namespace and target, the variable, and the analysis interval
    // (the metric has none of its own).
    bool rendered = false;
    for (const auto& q : metrics_->queries())
        if (q.find("custom_errors{namespace=\"test\", app=\"podinfo\", route=\"/api\"}[1s]") !=
            std::string::npos)
            rendered = true;
    EXPECT_TRUE(rendered);
    std::lock_guard lock(addresses_->mu);
    bool authed = false;
    for (const auto& o : addresses_->options)
        if (o.address == "http://prom.auth:9090" && o.credentials.bearerToken == "s3cret")
            authed = true;
    EXPECT_TRUE(authed);
}

// Workload status written by the test instead of the server's simulation, so readiness is
// under the test's control.
class ManualRolloutTest : public CanaryControllerTest {
  protected:
    testing::ApiServerOptions serverOptions() override {
        testing::ApiServerOptions o = CanaryControllerTest::serverOptions();
        o.simulateWorkloads = false;
        return o;
    }
    // As the Deployment controller would report a finished rollout of the current generation.
    void markReady(const std::string& name) {
        json d = client_->get(kDeploymentGvk, kNs, name);
        const int n = d["spec"].value("replicas", 1);
        json status = {{"observedGeneration", d["metadata"].value("generation", 1)},
                       {"replicas", n},
                       {"updatedReplicas", n},
                       {"readyReplicas", n},
                       {"availableReplicas", n}};
        kube::PatchOptions po;
        po.subresource = "status";
        client_->patch(kDeploymentGvk, kNs, name, kube::PatchType::Merge,
                       json({{"status", status}}).dump(), po);
    }
};

TEST_F(ManualRolloutTest, NothingIsRoutedToAPrimaryThatIsNotReady) {
    healthyMetrics();
    startController();
    server_->create(deployment("podinfo", "example/app:1.0"));
    markReady("podinfo");
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["progressDeadlineSeconds"] = 5;
    server_->create(canary);

    // Initialising: the primary exists but is not ready, so no traffic is routed to it and the
    // target keeps running.
    ASSERT_TRUE(eventually([&] { return deploymentObject("podinfo-primary").has_value(); }));
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(phase("podinfo"), "Initializing");
    EXPECT_FALSE(object("gateway.networking.k8s.io/v1", "HTTPRoute", "podinfo"));
    EXPECT_FALSE(object("v1", "Service", "podinfo"));
    EXPECT_TRUE(object("v1", "Service", "podinfo-primary"));
    EXPECT_EQ(replicasOf("podinfo"), 2);

    markReady("podinfo-primary");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Initialized"; }))
        << status("podinfo").dump(2);
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_EQ(replicasOf("podinfo"), 0);
    markReady("podinfo");

    // A new revision waits for its rollout before any traffic goes to it.
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return replicasOf("podinfo") == 2; }));
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(phase("podinfo"), "Progressing");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    markReady("podinfo");

    // The analysis passes; the primary gets the new template but never becomes ready: traffic
    // stays on the serving canary and the promotion fails after the progress deadline.
    ASSERT_TRUE(eventually([&] { return imageOf("podinfo-primary") == "example/app:2.0"; }))
        << status("podinfo").dump(2);
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(0, 100));
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Failed"; }))
        << status("podinfo").dump(2);
    EXPECT_TRUE(hasEventContaining("PromotionFailed", "podinfo-primary not ready"));
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(0, 100));
    EXPECT_EQ(replicasOf("podinfo"), 2);

    // Once the primary is ready, traffic moves back to it and the target scales down.
    markReady("podinfo-primary");
    EXPECT_TRUE(eventually([&] { return routeWeights("podinfo") == std::make_pair(100, 0); }))
        << status("podinfo").dump(2);
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 0; }));
}

// tests/data/examples: the three Flagger-style Canaries are accepted and initialised with their
// routing objects. Two name no provider: like Flagger with -mesh-provider=istio, the controller's
// default provider routes them.
TEST_F(CanaryControllerTest, SharedExamplesInitialise) {
    canarycontroller::Options o = defaultOptions();
    o.defaultProvider = "istio";
    startController(o);
    std::vector<std::pair<std::string, std::string>> canaries;  // namespace, name
    for (const char* file : {"canary.yaml", "blue-green.yaml", "stepped-canary.yaml"}) {
        for (json doc : yamlDocumentsToJson(readFile(testing::examplePath(file)))) {
            const std::string ns = doc["metadata"].value("namespace", "");
            if (!server_->get("v1", "Namespace", "", ns)) createNamespace(ns);
            if (doc.value("kind", "") == "Canary") {
                const std::string target = doc["spec"]["targetRef"]["name"];
                server_->create(deployment(target, "example/app:1.0", 2, ns));
                canaries.emplace_back(ns, doc["metadata"]["name"]);
            }
            server_->create(doc);
        }
    }
    ASSERT_EQ(canaries.size(), 3u);
    for (const auto& [ns, name] : canaries) {
        EXPECT_TRUE(eventually([&, ns = ns, name = name] {
            auto c = server_->get("sluice.io/v1alpha1", "Canary", ns, name);
            return c && c->value("status", json::object()).value("phase", "") == "Initialized";
        })) << ns
            << "/" << name << ": "
            << server_->get("sluice.io/v1alpha1", "Canary", ns, name)->dump(2);
        EXPECT_TRUE(server_->get("apps/v1", "Deployment", ns, name + "-primary")) << name;
        EXPECT_TRUE(server_->get("v1", "Service", ns, name + "-canary")) << name;
    }
    // Istio: a VirtualService with all traffic on the primary.
    auto vs = server_->get("networking.istio.io/v1", "VirtualService", "blessed-horizon",
                           "campaign-service");
    ASSERT_TRUE(vs);
    bool primaryAll = false;
    for (const json& d : (*vs)["spec"]["http"][0]["route"])
        if (d["destination"].value("host", "") == "campaign-service-primary" &&
            d.value("weight", 0) == 100)
            primaryAll = true;
    EXPECT_TRUE(primaryAll) << vs->dump(2);
    // Blue-green: a VirtualService too, and the apex Service selects the primary's pods.
    EXPECT_TRUE(
        server_->get("networking.istio.io/v1", "VirtualService", "production", "ml-platform"));
    auto apex = server_->get("v1", "Service", "production", "ml-platform");
    ASSERT_TRUE(apex);
    EXPECT_EQ((*apex)["spec"]["selector"].value("app", ""), "ml-platform-primary");
    // Gateway API.
    EXPECT_TRUE(
        server_->get("gateway.networking.k8s.io/v1", "HTTPRoute", "bifrost", "bifrost-api"));
}

// With a one-minute interval only the Deployment watch can notice a new template in time.
TEST_F(CanaryControllerTest, ATemplateChangeIsNoticedWithoutWaitingForTheInterval) {
    startController();
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["analysis"]["interval"] = "1m";
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    const auto changed = std::chrono::steady_clock::now();
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Progressing"; }, 30s))
        << status("podinfo").dump(2);
    EXPECT_LT(std::chrono::steady_clock::now() - changed, 30s);
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 2; }, 30s));
}

TEST_F(CanaryControllerTest, SkipAnalysisPromotesWithoutChecks) {
    startController();  // no metric is scripted: any query would be an error
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["skipAnalysis"] = true;
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    EXPECT_TRUE(metrics_->queries().empty());
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
}

TEST_F(CanaryControllerTest, FieldsWithoutEffectAreNamedInOneEventPerChange) {
    healthyMetrics();
    startController();
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["service"]["delegation"] = true;
    canary["spec"]["upstreamRef"] = {
        {"apiVersion", "gloo.solo.io/v1"}, {"kind", "Upstream"}, {"name", "podinfo"}};
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    ASSERT_TRUE(eventually([&] { return !events("FieldsNotImplemented").empty(); }));
    EXPECT_TRUE(hasEventContaining("FieldsNotImplemented",
                                   "spec.upstreamRef, spec.service.delegation: set, but not "
                                   "implemented"));
    // Later reconciles (a whole rollout) do not repeat it.
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    auto said = events("FieldsNotImplemented");
    ASSERT_EQ(said.size(), 1u);
    EXPECT_EQ(said[0].value("count", 1), 1);
    // A changed set is said again.
    json patch = {{"spec", {{"service", {{"delegation", nullptr}}}}}};
    client_->patch(kCanaryGvk, kNs, "podinfo", kube::PatchType::Merge, patch.dump());
    EXPECT_TRUE(eventually([&] {
        return hasEventContaining("FieldsNotImplemented",
                                  "spec.upstreamRef: set, but not implemented");
    }));
}

TEST_F(CanaryControllerTest, InvalidSpecIsReportedAndNothingIsCreated) {
    startController();
    server_->create(deployment("podinfo", "example/app:1.0"));
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["provider"] = "linkerd-nonexistent";
    server_->create(canary);
    ASSERT_TRUE(eventually([&] { return !events("InvalidSpec").empty(); }));
    EXPECT_TRUE(hasEventContaining("InvalidSpec", "spec.provider"));
    // The reason is in the status too, although there is no phase yet.
    ASSERT_TRUE(eventually([&] { return status("podinfo").contains("conditions"); }))
        << status("podinfo").dump(2);
    json condition = status("podinfo")["conditions"][0];
    EXPECT_EQ(condition.value("type", ""), "Promoted");
    EXPECT_EQ(condition.value("status", ""), "False");
    EXPECT_EQ(condition.value("reason", ""), "InvalidSpec");
    EXPECT_NE(condition.value("message", "").find("spec.provider"), std::string::npos)
        << condition.dump();
    std::this_thread::sleep_for(1500ms);
    EXPECT_FALSE(deploymentObject("podinfo-primary"));
    EXPECT_FALSE(object("v1", "Service", "podinfo"));
    EXPECT_EQ(replicasOf("podinfo"), 2);
    EXPECT_EQ(phase("podinfo"), "");

    // Reconciles that find the same errors neither repeat the Event nor rewrite the status.
    auto invalidSpecEvents = [&] {
        int n = 0;
        for (const json& e : events("InvalidSpec")) n += e.value("count", 1);
        return n;
    };
    EXPECT_EQ(invalidSpecEvents(), 1);
    for (int i = 0; i < 5; ++i) {
        auto r = controller_->reconcileNow(kNs, "podinfo");
        EXPECT_TRUE(r.succeeded) << r.error;
        EXPECT_FALSE(r.statusWritten);
        EXPECT_TRUE(r.actions.empty());
    }
    EXPECT_EQ(invalidSpecEvents(), 1);
    // Other errors: one more Event, and the condition says so.
    client_->patch(kCanaryGvk, kNs, "podinfo", kube::PatchType::Merge,
                   R"({"spec":{"provider":"other-nonexistent"}})");
    ASSERT_TRUE(eventually([&] { return hasEventContaining("InvalidSpec", "other-nonexistent"); }));
    EXPECT_TRUE(eventually([&] {
        return status("podinfo")["conditions"][0].value("message", "").find("other-nonexistent") !=
               std::string::npos;
    })) << status("podinfo").dump(2);
    for (int i = 0; i < 3; ++i) controller_->reconcileNow(kNs, "podinfo");
    EXPECT_EQ(invalidSpecEvents(), 2);

    // Fixed: the Canary initialises.
    client_->patch(kCanaryGvk, kNs, "podinfo", kube::PatchType::Merge,
                   R"({"spec":{"provider":"gatewayapi:v1"}})");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Initialized"; }))
        << status("podinfo").dump(2);
    EXPECT_EQ(status("podinfo")["conditions"][0].value("status", ""), "True");
    EXPECT_EQ(status("podinfo")["conditions"][0].value("reason", ""), "Initialized");

    // Broken again later: the Promoted condition says why, nothing moves.
    client_->patch(kCanaryGvk, kNs, "podinfo", kube::PatchType::Merge,
                   R"({"spec":{"service":{"gatewayRefs":null}}})");
    EXPECT_TRUE(eventually([&] {
        const json st = status("podinfo");
        return st.contains("conditions") &&
               st["conditions"][0].value("message", "").find("Invalid spec") != std::string::npos;
    })) << status("podinfo").dump(2);
    EXPECT_EQ(phase("podinfo"), "Initialized");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
}

// --- manual requests (sluice.io/promote|abort|retry annotations) -----------------------------

class ManualRequestTest : public CanaryControllerTest {
  protected:
    // A Canary whose analysis advances once a minute: it stays at weight 25 long enough for
    // the requests to be what moves it.
    static json slowCanary() {
        json canary = gatewayCanary("podinfo", "podinfo");
        canary["spec"]["analysis"]["interval"] = "1m";
        return canary;
    }
    // A request time later (to the second) than the Canary's last transition, as the
    // controller requires: waits for the wall clock to pass it.
    std::string requestTime(const std::string& name) {
        auto last = canaryengine::parseTimestamp(status(name).value("lastTransitionTime", ""));
        EXPECT_TRUE(last) << status(name).dump(2);
        if (last) {
            EXPECT_TRUE(eventually(
                [&] {
                    return std::chrono::floor<std::chrono::seconds>(
                               std::chrono::system_clock::now()) > *last;
                },
                10s));
        }
        return formatRfc3339(std::chrono::system_clock::now());
    }
    void annotate(const std::string& name, const std::string& key, const std::string& value) {
        json patch = {{"metadata", {{"annotations", {{key, value}}}}}};
        client_->patch(kCanaryGvk, kNs, name, kube::PatchType::Merge, patch.dump());
    }
    bool hasAnnotation(const std::string& name, const std::string& key) {
        const json c = canaryObject(name);
        return c.contains("metadata") && c["metadata"].contains("annotations") &&
               c["metadata"]["annotations"].contains(key);
    }
    // Deploys a new image and waits until the analysis holds at weight 25.
    void deployAndWaitAt25(const std::string& image) {
        setImage("podinfo", image);
        ASSERT_TRUE(eventually([&] {
            const json st = status("podinfo");
            return st.value("phase", "") == "Progressing" && st.value("canaryWeight", 0) == 25 &&
                   routeWeights("podinfo") == std::make_pair(75, 25);
        })) << status("podinfo").dump(2);
    }
    // Promote, abort and retry through `request(action)`, checked through the API.
    void promoteAbortRetry(const std::function<void(const std::string& action)>& request);
};

void ManualRequestTest::promoteAbortRetry(
    const std::function<void(const std::string& action)>& request) {
    healthyMetrics();
    startController();
    ASSERT_NO_FATAL_FAILURE(initialise(slowCanary(), "podinfo"));

    // abort: rolled back as by a rollback webhook, the annotation removed.
    ASSERT_NO_FATAL_FAILURE(deployAndWaitAt25("example/app:2.0"));
    request("abort");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Failed"; }, 30s))
        << status("podinfo").dump(2);
    EXPECT_TRUE(eventually([&] { return !hasAnnotation("podinfo", "sluice.io/abort"); }));
    EXPECT_TRUE(hasEventContaining("RollingBack",
                                   "Rolling back podinfo: manual abort "
                                   "(sluice.io/abort="));
    EXPECT_NE(status("podinfo")["conditions"][0].value("message", "").find("sluice.io/abort="),
              std::string::npos);
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 0; }));
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:1.0");
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(phase("podinfo"), "Failed");

    // retry: the same revision analysed again from the start.
    request("retry");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Progressing"; }, 30s))
        << status("podinfo").dump(2);
    EXPECT_TRUE(eventually([&] { return !hasAnnotation("podinfo", "sluice.io/retry"); }));
    EXPECT_TRUE(hasEventContaining("Retry", "restarting the analysis of podinfo"));
    EXPECT_EQ(status("podinfo").value("failedChecks", -1), 0);
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 2; }));
    ASSERT_TRUE(eventually([&] { return status("podinfo").value("canaryWeight", 0) == 25; }))
        << status("podinfo").dump(2);

    // The status is written mid-reconcile and the record when the reconcile returns: wait
    // for the record of the step to 25, so that it is not counted as following the promotion.
    ASSERT_TRUE(eventually([&] {
        const std::vector<int> weights = canaryWeightsSet(actions());
        return !weights.empty() && weights.back() == 25;
    }));

    // promote: no further step (the analysis would take minutes), the primary gets the
    // analysed template.
    const size_t before = actions().size();
    request("promote");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }, 30s))
        << status("podinfo").dump(2);
    EXPECT_TRUE(eventually([&] { return !hasAnnotation("podinfo", "sluice.io/promote"); }));
    EXPECT_TRUE(hasEventContaining("PromotionRequested", "Manual promotion (sluice.io/promote="));
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 0; }));
    std::vector<std::string> after = actions();
    after.erase(after.begin(), after.begin() + static_cast<long>(before));
    for (int w : canaryWeightsSet(after)) EXPECT_TRUE(w == 100 || w == 0) << w;
    EXPECT_EQ(controller_->stats().errors, 0u);
}

TEST_F(ManualRequestTest, AnnotationsPromoteAbortAndRetry) {
    promoteAbortRetry([&](const std::string& action) {
        annotate("podinfo", "sluice.io/" + action, requestTime("podinfo"));
    });
    // Every removal was recorded.
    std::vector<std::string> removed;
    for (const auto& r : records())
        removed.insert(removed.end(), r.requestsRemoved.begin(), r.requestsRemoved.end());
    for (const char* a : {"sluice.io/abort", "sluice.io/retry", "sluice.io/promote"})
        EXPECT_NE(std::find(removed.begin(), removed.end(), a), removed.end()) << a;
}

TEST_F(ManualRequestTest, StaleAndMisplacedRequestsAreRemovedWithoutEffect) {
    healthyMetrics();
    startController();
    ASSERT_NO_FATAL_FAILURE(initialise(slowCanary(), "podinfo"));
    ASSERT_NO_FATAL_FAILURE(deployAndWaitAt25("example/app:2.0"));
    const json held = status("podinfo");

    // Older than the last transition: left from an earlier rollout.
    annotate("podinfo", "sluice.io/abort", "2020-01-01T00:00:00Z");
    ASSERT_TRUE(eventually([&] { return !hasAnnotation("podinfo", "sluice.io/abort"); }));
    // Retry applies only after a failure.
    annotate("podinfo", "sluice.io/retry", requestTime("podinfo"));
    ASSERT_TRUE(eventually([&] { return !hasAnnotation("podinfo", "sluice.io/retry"); }));
    EXPECT_TRUE(eventually([&] {
        return hasEventContaining("RequestRefused", "retry applies only in phase Failed");
    }));
    std::this_thread::sleep_for(1s);
    const json st = status("podinfo");
    EXPECT_EQ(st.value("phase", ""), "Progressing");
    EXPECT_EQ(st.value("canaryWeight", 0), 25);
    EXPECT_EQ(st.value("lastTransitionTime", ""), held.value("lastTransitionTime", ""));
    EXPECT_TRUE(events("RollingBack").empty());
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(75, 25));
    EXPECT_EQ(controller_->stats().errors, 0u);
}

#ifdef KUBECTL_SLUICE_BIN
// The real `kubectl-sluice canary promote|abort|retry` against the same API server.
TEST_F(ManualRequestTest, KubectlSluicePluginPromoteAbortRetry) {
    promoteAbortRetry([&](const std::string& action) {
        requestTime("podinfo");  // the plugin stamps the request with its own clock
        auto ran = sluice::testing::runProcess(
            {KUBECTL_SLUICE_BIN, "canary", action, "podinfo", "-n", kNs},
            {{"KUBECONFIG", dir_.file("kubeconfig")}, {"HOME", dir_.path()}}, 60s);
        EXPECT_EQ(ran.exitCode, 0) << ran.out << ran.err;
        EXPECT_NE(ran.out.find("canary.sluice.io/podinfo " + action + " requested"),
                  std::string::npos)
            << ran.out << ran.err;
    });
}
#endif

TEST_F(CanaryControllerTest, ARestartedControllerContinuesFromTheStatus) {
    healthyMetrics();
    startController();
    // Steps 3 s apart: the test must see weight 25 before the analysis moves on, also on a
    // loaded machine (CI missed a 1 s step once).
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["analysis"]["interval"] = "3s";
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return status("podinfo").value("canaryWeight", 0) == 25; }))
        << status("podinfo").dump(2);
    controller_.reset();
    factory_ = std::make_unique<cache::SharedInformerFactory>(*client_);
    {
        std::lock_guard lock(recordsMu_);
        records_.clear();
    }
    const json held = status("podinfo");
    EXPECT_EQ(held.value("phase", ""), "Progressing");

    startController();
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    // The new controller did not start over: no second initialization, no return to weight 0
    // before the promotion.
    std::vector<int> weights = canaryWeightsSet(actions());
    ASSERT_FALSE(weights.empty());
    EXPECT_NE(weights.front(), 0) << "restarted from weight 0";
    EXPECT_FALSE(sawAction("InitializePrimary(" + held.value("lastPromotedSpec", "") + ")"));
}

}  // namespace
}  // namespace sluice::canarytest
