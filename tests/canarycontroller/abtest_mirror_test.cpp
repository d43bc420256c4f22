// A/B testing and traffic mirroring carried out by the controller on Gateway API routes (the
// shipped CRDs in the in-process API server): the routes during the analysis, after it, and
// a router that cannot express them.
#include "harness.h"

namespace sluice::canarytest {
namespace {

const std::string kHttpRoute = "gateway.networking.k8s.io/v1";

class AbMirrorTest : public CanaryControllerTest {
  protected:
    // The harness's Gateway API canary with `iterations` instead of steps: blue-green.
    static json blueGreenCanary(const std::string& name, int iterations) {
        json canary = gatewayCanary(name, name);
        json& analysis = canary["spec"]["analysis"];
        analysis.erase("stepWeight");
        analysis.erase("maxWeight");
        analysis["iterations"] = iterations;
        analysis["interval"] = "2s";
        return canary;
    }
    // A/B testing on the header x-canary: insider.
    static json abCanary(const std::string& name) {
        json canary = blueGreenCanary(name, 4);
        canary["spec"]["analysis"]["match"] =
            json::parse(R"([{"headers": {"x-canary": {"exact": "insider"}}}])");
        return canary;
    }
};

// The first rule's backend weight for `service`; -1 when the rule or backend is missing.
int firstRuleWeight(const json& route, const std::string& service) {
    const json& rules = route["spec"].value("rules", json::array());
    if (rules.empty()) return -1;
    for (const json& ref : rules[0].value("backendRefs", json::array()))
        if (ref.value("name", "") == service) return ref.value("weight", 1);
    return -1;
}

TEST_F(AbMirrorTest, AbTestingSendsMatchedRequestsToTheCanaryDuringTheAnalysis) {
    healthyMetrics();
    startController();
    ASSERT_NO_FATAL_FAILURE(initialise(abCanary("podinfo"), "podinfo"));
    auto route = [&] { return object(kHttpRoute, "HTTPRoute", "podinfo").value_or(json()); };
    ASSERT_EQ(route()["spec"]["rules"].size(), 2u);
    EXPECT_EQ(firstRuleWeight(route(), "podinfo-canary"), 0);

    setImage("podinfo", "example/app:2.0");
    // During the analysis the header-matched rule goes to the canary, the other to the primary.
    ASSERT_TRUE(eventually([&] {
        return phase("podinfo") == "Progressing" &&
               firstRuleWeight(route(), "podinfo-canary") == 100;
    })) << status("podinfo").dump(2);
    json during = route();
    EXPECT_EQ(during["spec"]["rules"][0]["matches"][0]["headers"],
              json::parse(R"([{"name": "x-canary", "type": "Exact", "value": "insider"}])"));
    EXPECT_EQ(firstRuleWeight(during, "podinfo-primary"), 0);
    ASSERT_EQ(during["spec"]["rules"][1]["backendRefs"].size(), 1u);
    EXPECT_EQ(during["spec"]["rules"][1]["backendRefs"][0]["name"], "podinfo-primary");
    // The Event is recorded after the route is written: waited for, not read at once.
    EXPECT_TRUE(eventually([&] {
        return hasEventContaining("Advance", "routing requests that match analysis.match");
    }));
    // Metrics are judged while the matched requests are on the canary.
    const size_t queriesBefore = metrics_->queries().size();
    ASSERT_TRUE(eventually([&] { return status("podinfo").value("iterations", 0) >= 2; }))
        << status("podinfo").dump(2);
    EXPECT_GT(metrics_->queries().size(), queriesBefore);
    EXPECT_EQ(phase("podinfo"), "Progressing");
    EXPECT_EQ(firstRuleWeight(route(), "podinfo-canary"), 100);

    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }, 60s))
        << status("podinfo").dump(2);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    // After the promotion every request goes to the primary.
    EXPECT_EQ(firstRuleWeight(route(), "podinfo-canary"), 0);
    EXPECT_EQ(firstRuleWeight(route(), "podinfo-primary"), 100);
    EXPECT_EQ(status("podinfo").value("iterations", 0), 4);
}

TEST_F(AbMirrorTest, AbTestingRollbackTakesTheMatchedRequestsBack) {
    healthyMetrics();
    startController();
    ASSERT_NO_FATAL_FAILURE(initialise(abCanary("podinfo"), "podinfo"));
    auto route = [&] { return object(kHttpRoute, "HTTPRoute", "podinfo").value_or(json()); };
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return firstRuleWeight(route(), "podinfo-canary") == 100; }))
        << status("podinfo").dump(2);
    metrics_->whenQueryContains("!~", canaryengine::MetricResult::measured(50));
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Failed"; }, 60s))
        << status("podinfo").dump(2);
    EXPECT_EQ(firstRuleWeight(route(), "podinfo-canary"), 0);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:1.0");
}

// The first rule's RequestMirror filter; null when it has none.
json mirrorFilter(const json& route) {
    const json& rules = route["spec"].value("rules", json::array());
    if (rules.empty()) return nullptr;
    for (const json& filter : rules[0].value("filters", json::array()))
        if (filter.value("type", "") == "RequestMirror") return filter["requestMirror"];
    return nullptr;
}

TEST_F(AbMirrorTest, BlueGreenMirrorsToTheCanaryDuringTheIterationsAndHealsTheFilter) {
    healthyMetrics();
    startController();
    json canary = blueGreenCanary("podinfo", 6);
    canary["spec"]["analysis"]["mirror"] = true;
    canary["spec"]["analysis"]["mirrorWeight"] = 50;
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    auto route = [&] { return object(kHttpRoute, "HTTPRoute", "podinfo").value_or(json()); };
    EXPECT_TRUE(mirrorFilter(route()).is_null());

    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return !mirrorFilter(route()).is_null(); }))
        << status("podinfo").dump(2);
    EXPECT_EQ(mirrorFilter(route()), json::parse(R"({"backendRef": {"group": "", "kind":
        "Service", "name": "podinfo-canary", "port": 80}, "percent": 50})"));
    // Responses still come from the primary only.
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_FALSE(hasEventContaining("FieldsNotImplemented", "mirror"));

    // A filter removed by hand mid-analysis is put back: the engine derives the mirroring.
    const kube::GroupVersionKind gvk{"gateway.networking.k8s.io", "v1", "HTTPRoute"};
    client_->patch(gvk, kNs, "podinfo", kube::PatchType::JsonPatch,
                   R"([{"op": "remove", "path": "/spec/rules/0/filters"}])");
    ASSERT_TRUE(eventually([&] { return hasEventContaining("RoutingRestored", "mirror"); }))
        << status("podinfo").dump(2);
    EXPECT_FALSE(mirrorFilter(route()).is_null());

    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }, 60s))
        << status("podinfo").dump(2);
    EXPECT_TRUE(mirrorFilter(route()).is_null());
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
}

TEST_F(AbMirrorTest, ARouterThatCannotExpressTheMatchIsAnInvalidSpec) {
    startController();
    server_->create(deployment("podinfo", "example/app:1.0"));
    json canary = abCanary("podinfo");
    // Gateway API has no field for the source workload's labels.
    canary["spec"]["analysis"]["match"] = json::parse(R"([{"sourceLabels": {"app": "tester"}}])");
    server_->create(canary);
    ASSERT_TRUE(eventually([&] { return !events("InvalidSpec").empty(); }));
    EXPECT_TRUE(hasEventContaining("InvalidSpec", "sourceLabels"));
    EXPECT_FALSE(deploymentObject("podinfo-primary"));
}

}  // namespace
}  // namespace sluice::canarytest
