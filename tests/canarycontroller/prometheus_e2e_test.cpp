// End to end with a real Prometheus (Debian package `prometheus`, on loopback): two test
// backends (primary and canary pods) export request metrics, a traffic generator splits
// requests by the weights the controller writes into the HTTPRoute, and the Canary judges the
// canary with MetricTemplate queries (error rate, p99 latency) read from the cluster. One test case
// per strategy on purpose: a Prometheus needs ~6 s before its first scrape. The A/B case sends
// requests with and without a header and routes each by the live HTTPRoute's matches. The HPA
// case promotes an autoscaled target and checks the primary's HorizontalPodAutoscaler follows.
#include <algorithm>
#include <atomic>
#include <map>
#include <regex>
#include <thread>

#include "harness.h"
#include "prometheus/http_metrics.h"
#include "prometheus/prometheus_server.h"

namespace sluice::canarytest {
namespace {

// The shared stepped-canary example's MetricTemplate: error percentage of the canary pods
// (`<target>-<hash>-<id>`; the primary's `<target>-primary-<hash>-<id>` does not match).
json errorRateTemplate(const std::string& prometheusUrl) {
    return {{"apiVersion", "sluice.io/v1alpha1"},
            {"kind", "MetricTemplate"},
            {"metadata", {{"name", "error-rate"}, {"namespace", kNs}}},
            {"spec",
             {{"provider", {{"type", "prometheus"}, {"address", prometheusUrl}}},
              {"query",
               "100 * sum(rate(http_requests_total{namespace=\"{{ namespace }}\","
               "pod=~\"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\",status=~\"5..\"}[{{ "
               "interval }}]))\n/\nsum(rate(http_requests_total{namespace=\"{{ "
               "namespace }}\",pod=~\"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"}[{{ "
               "interval }}]))"}}}};
}

TEST_F(CanaryControllerTest,
       RealPrometheusPromotesHealthyRollsBackFailingOrSlowAndHoldsWithoutData) {
    ASSERT_FALSE(testing::findPrometheusBinary().empty()) << testing::prometheusMissingMessage();

    testing::MetricsExporter canaryPod, primaryPod;
    testing::PrometheusOptions popts;
    popts.targets = {
        {"podinfo", canaryPod.address(), {{"namespace", kNs}, {"pod", "podinfo-7d9f8b6c5-x2x4z"}}},
        {"podinfo",
         primaryPod.address(),
         {{"namespace", kNs}, {"pod", "podinfo-primary-6c7d8e9f0-abcde"}}},
    };
    testing::PrometheusServer prom(popts);
    prom.start();
    ASSERT_TRUE(prom.waitForTargetsUp(60s)) << prom.log();

    // Traffic: 20 requests every 50 ms, split by the live HTTPRoute weights. The primary always
    // answers 200 in 20 ms; the canary answers 503 while canaryFails is set, and takes 1.5 s
    // while canarySlow is set.
    std::atomic<bool> canaryFails{false};
    std::atomic<bool> canarySlow{false};
    testing::TrafficLoop traffic(
        [&] {
            auto [p, c] = routeWeights("podinfo");
            int toCanary = c > 0 ? 20 * c / 100 : 0;
            if (toCanary > 0)
                canaryPod.metrics.record(canaryFails ? 503 : 200,
                                         canarySlow ? std::chrono::duration<double>(1.5)
                                                    : std::chrono::duration<double>(0.02),
                                         toCanary);
            if (20 - toCanary > 0) primaryPod.metrics.record(200, 0.02s, 20 - toCanary);
        },
        50ms);

    server_->create(errorRateTemplate(prom.url()));
    // p99 latency of the canary pods in milliseconds, as Flagger's request-duration reports it.
    server_->create(
        {{"apiVersion", "sluice.io/v1alpha1"},
         {"kind", "MetricTemplate"},
         {"metadata", {{"name", "latency"}, {"namespace", kNs}}},
         {"spec",
          {{"provider", {{"type", "prometheus"}, {"address", prom.url()}}},
           {"query",
            "histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{"
            "namespace=\"{{ namespace }}\",pod=~\"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
            "\"}[{{ interval }}])) by (le)) * 1000"}}}});
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["analysis"]["interval"] = "2s";
    canary["spec"]["analysis"]["metrics"] =
        json::array({{{"name", "error-rate"},
                      {"templateRef", {{"name", "error-rate"}, {"namespace", kNs}}},
                      {"thresholdRange", {{"max", 1}}},
                      {"interval", "10s"}},
                     {{"name", "request-duration"},
                      {"templateRef", {{"name", "latency"}, {"namespace", kNs}}},
                      {"thresholdRange", {{"max", 500}}},
                      {"interval", "10s"}}});

    canarycontroller::Options o = defaultOptions();
    o.metricProviders = nullptr;             // the real Prometheus client
    o.metricsServer = "http://127.0.0.1:1";  // unused: the template names its server
    startController(o);
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));

    // 1. Healthy canary: promoted through every step.
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }, 120s))
        << status("podinfo").dump(2) << prom.log();
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_GT(canaryPod.metrics.requests(200), 0u);

    // 2. Canary answering 5xx: rolled back after `threshold` failed checks, traffic on primary.
    canaryFails = true;
    setImage("podinfo", "example/app:3.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Failed"; }, 120s))
        << status("podinfo").dump(2);
    EXPECT_EQ(status("podinfo").value("failedChecks", 0), 2);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_TRUE(hasEventContaining("Halt", "error-rate"));
    EXPECT_TRUE(hasEventContaining("Halt", "> 1"));

    // 3. Slow canary (1.5 s per request, all 200): rolled back on request-duration. (The 10 s
    // query window first forgets the failing requests of the previous revision.)
    canaryFails = false;
    canarySlow = true;
    std::this_thread::sleep_for(11s);
    setImage("podinfo", "example/app:3.5");
    // First the new revision's analysis starts (the previous rollback's Failed is left), then
    // it fails on its own checks.
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Progressing"; }, 60s))
        << status("podinfo").dump(2);
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Failed"; }, 120s))
        << status("podinfo").dump(2);
    EXPECT_EQ(status("podinfo").value("failedChecks", 0), 2);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_TRUE(hasEventContaining("Halt", "request-duration"));
    EXPECT_TRUE(hasEventContaining("Halt", "> 500"));

    // 4. Prometheus gone mid-analysis: the canary holds, nothing is promoted or failed.
    canarySlow = false;
    std::this_thread::sleep_for(11s);
    setImage("podinfo", "example/app:4.0");
    ASSERT_TRUE(eventually([&] { return status("podinfo").value("canaryWeight", 0) > 0; }, 60s))
        << status("podinfo").dump(2);
    prom.stop();
    ASSERT_TRUE(eventually([&] { return status("podinfo").contains("noDataSince"); }, 60s))
        << status("podinfo").dump(2);
    EXPECT_NE(status("podinfo").value("noDataReason", "").find("query error"), std::string::npos)
        << status("podinfo").dump(2);
    const int heldWeight = status("podinfo").value("canaryWeight", -1);
    EXPECT_TRUE(heldWeight == 25 || heldWeight == 50) << heldWeight;
    std::this_thread::sleep_for(5s);
    const json st = status("podinfo");
    EXPECT_EQ(st.value("phase", ""), "Progressing");
    EXPECT_EQ(st.value("canaryWeight", -1), heldWeight);
    EXPECT_EQ(st.value("failedChecks", -1), 0);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
}

// The backend weights (primary, canary) of the first HTTPRoute rule that a request with these
// headers matches, as a Gateway API implementation picks it: a match holds when every header
// it names is there with that value (Exact) or matching (RegularExpression). {-1, -1}: none.
std::pair<int, int> routeFor(const json& route, const std::map<std::string, std::string>& headers,
                             const std::string& name) {
    auto holds = [&](const json& match) {
        for (const json& h : match.value("headers", json::array())) {
            auto it = headers.find(h.value("name", ""));
            if (it == headers.end()) return false;
            if (h.value("type", "Exact") == "RegularExpression") {
                if (!std::regex_match(it->second, std::regex(h.value("value", "")))) return false;
            } else if (it->second != h.value("value", "")) {
                return false;
            }
        }
        return true;
    };
    for (const json& rule : route["spec"].value("rules", json::array())) {
        const json matches = rule.value("matches", json::array());
        if (!std::any_of(matches.begin(), matches.end(), holds)) continue;
        int p = 0, c = 0;
        for (const json& ref : rule.value("backendRefs", json::array())) {
            if (ref.value("name", "") == name + "-primary") p = ref.value("weight", 1);
            if (ref.value("name", "") == name + "-canary") c = ref.value("weight", 1);
        }
        return {p, c};
    }
    return {-1, -1};
}

// A/B testing: requests with the header x-canary: insider reach the canary during the
// analysis (the others stay on the primary) and their errors are what the analysis judges.
TEST_F(CanaryControllerTest, RealPrometheusJudgesHeaderMatchedRequestsOfAnAbCanary) {
    ASSERT_FALSE(testing::findPrometheusBinary().empty()) << testing::prometheusMissingMessage();

    testing::MetricsExporter canaryPod, primaryPod;
    testing::PrometheusOptions popts;
    popts.targets = {
        {"podinfo", canaryPod.address(), {{"namespace", kNs}, {"pod", "podinfo-7d9f8b6c5-x2x4z"}}},
        {"podinfo",
         primaryPod.address(),
         {{"namespace", kNs}, {"pod", "podinfo-primary-6c7d8e9f0-abcde"}}},
    };
    testing::PrometheusServer prom(popts);
    prom.start();
    ASSERT_TRUE(prom.waitForTargetsUp(60s)) << prom.log();

    // Traffic every 50 ms: 5 requests with the header x-canary: insider and 15 without, each
    // group sent where the live HTTPRoute routes it. The canary answers 503 while canaryFails.
    std::atomic<bool> canaryFails{false};
    std::atomic<int> matchedOnCanary{0};
    std::atomic<int> unmatchedOnCanary{0};
    std::atomic<bool> analysing{false};
    std::atomic<int> matchedOnCanaryDuringAnalysis{0};
    testing::TrafficLoop traffic(
        [&] {
            auto route = object("gateway.networking.k8s.io/v1", "HTTPRoute", "podinfo");
            if (!route) return;
            auto send = [&](const std::map<std::string, std::string>& headers, int count,
                            std::atomic<int>& onCanary) {
                auto [p, c] = routeFor(*route, headers, "podinfo");
                if (p < 0 || p + c <= 0) return;
                const int toCanary = count * c / (p + c);
                if (toCanary > 0) {
                    canaryPod.metrics.record(canaryFails ? 503 : 200, 0.02s, toCanary);
                    onCanary += toCanary;
                }
                if (count - toCanary > 0) primaryPod.metrics.record(200, 0.02s, count - toCanary);
            };
            const int before = matchedOnCanary;
            send({{"x-canary", "insider"}, {"user-agent", "curl/8"}}, 5, matchedOnCanary);
            if (analysing) matchedOnCanaryDuringAnalysis += matchedOnCanary - before;
            send({{"user-agent", "curl/8"}}, 15, unmatchedOnCanary);
        },
        50ms);

    server_->create(errorRateTemplate(prom.url()));
    json canary = gatewayCanary("podinfo", "podinfo");
    json& analysis = canary["spec"]["analysis"];
    analysis.erase("stepWeight");
    analysis.erase("maxWeight");
    analysis["iterations"] = 4;
    analysis["interval"] = "2s";
    analysis["match"] = json::parse(R"([{"headers": {"x-canary": {"exact": "insider"}}}])");
    analysis["metrics"] =
        json::array({{{"name", "error-rate"},
                      {"templateRef", {{"name", "error-rate"}, {"namespace", kNs}}},
                      {"thresholdRange", {{"max", 1}}},
                      {"interval", "10s"}}});

    canarycontroller::Options o = defaultOptions();
    o.metricProviders = nullptr;             // the real Prometheus client
    o.metricsServer = "http://127.0.0.1:1";  // unused: the template names its server
    startController(o);
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));

    // 1. Healthy canary: the matched requests reach it during the analysis; promoted.
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Progressing"; }, 60s));
    analysing = true;
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }, 120s))
        << status("podinfo").dump(2) << prom.log();
    analysing = false;
    EXPECT_GT(matchedOnCanaryDuringAnalysis.load(), 0);
    EXPECT_EQ(unmatchedOnCanary.load(), 0);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    EXPECT_EQ(routeFor(*object("gateway.networking.k8s.io/v1", "HTTPRoute", "podinfo"),
                       {{"x-canary", "insider"}}, "podinfo"),
              std::make_pair(100, 0));

    // 2. The canary fails the matched requests: error-rate over 1 %, rolled back.
    canaryFails = true;
    setImage("podinfo", "example/app:3.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Failed"; }, 120s))
        << status("podinfo").dump(2);
    EXPECT_TRUE(hasEventContaining("Halt", "error-rate"));
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    EXPECT_EQ(unmatchedOnCanary.load(), 0);
    const int matchedAfterRollback = matchedOnCanary;
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(matchedOnCanary.load(), matchedAfterRollback) << "matched requests back on primary";
}

// An autoscaling/v2 HorizontalPodAutoscaler on the target: `podinfo-primary` HPA scales the
// primary from initialisation on.
json targetHpa(int maxReplicas, int cpuUtilization, const std::string& requestsPerPod) {
    return {
        {"apiVersion", "autoscaling/v2"},
        {"kind", "HorizontalPodAutoscaler"},
        {"metadata", {{"name", "podinfo"}, {"namespace", kNs}, {"labels", {{"team", "a"}}}}},
        {"spec",
         {{"scaleTargetRef",
           {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "podinfo"}}},
          {"minReplicas", 2},
          {"maxReplicas", maxReplicas},
          {"metrics",
           json::array(
               {{{"type", "Resource"},
                 {"resource",
                  {{"name", "cpu"},
                   {"target", {{"type", "Utilization"}, {"averageUtilization", cpuUtilization}}}}}},
                {{"type", "Pods"},
                 {"pods",
                  {{"metric", {{"name", "http_requests_per_second"}}},
                   {"target", {{"type", "AverageValue"}, {"averageValue", requestsPerPod}}}}}}})},
          {"behavior", {{"scaleDown", {{"stabilizationWindowSeconds", 300}}}}}}}};
}

// Whether `manager` holds a Deployment's spec.replicas (its managedFields entry for this
// operation: "Apply" for server-side apply, "Update" for a patch).
bool ownsReplicas(const json& deployment, const std::string& manager,
                  const std::string& operation) {
    for (const json& entry : deployment["metadata"].value("managedFields", json::array()))
        if (entry.value("manager", "") == manager && entry.value("operation", "") == operation &&
            entry.contains(json::json_pointer("/fieldsV1/f:spec/f:replicas")))
            return true;
    return false;
}

TEST_F(CanaryControllerTest, RealPrometheusPromotesAnHpaBackedCanaryAndItsPrimaryHpaFollows) {
    ASSERT_FALSE(testing::findPrometheusBinary().empty()) << testing::prometheusMissingMessage();
    const kube::GroupVersionKind hpaGvk{"autoscaling", "v2", "HorizontalPodAutoscaler"};
    auto hpa = [&](const std::string& name) {
        return object("autoscaling/v2", "HorizontalPodAutoscaler", name);
    };
    // The target's HPA spec as the primary's copy must have it: scaling podinfo-primary.
    auto forPrimary = [](json spec) {
        spec["scaleTargetRef"]["name"] = "podinfo-primary";
        return spec;
    };

    testing::MetricsExporter canaryPod, primaryPod;
    testing::PrometheusOptions popts;
    popts.targets = {
        {"podinfo", canaryPod.address(), {{"namespace", kNs}, {"pod", "podinfo-7d9f8b6c5-x2x4z"}}},
        {"podinfo",
         primaryPod.address(),
         {{"namespace", kNs}, {"pod", "podinfo-primary-6c7d8e9f0-abcde"}}},
    };
    testing::PrometheusServer prom(popts);
    prom.start();
    ASSERT_TRUE(prom.waitForTargetsUp(60s)) << prom.log();

    // Healthy traffic: 20 requests every 50 ms split by the live HTTPRoute weights, all 200 in
    // 20 ms on both sides.
    testing::TrafficLoop traffic(
        [&] {
            auto [p, c] = routeWeights("podinfo");
            const int toCanary = c > 0 ? 20 * c / 100 : 0;
            if (toCanary > 0) canaryPod.metrics.record(200, 0.02s, toCanary);
            if (20 - toCanary > 0) primaryPod.metrics.record(200, 0.02s, 20 - toCanary);
        },
        50ms);

    server_->create(errorRateTemplate(prom.url()));
    server_->create(targetHpa(4, 80, "10"));
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["autoscalerRef"] = {
        {"apiVersion", "autoscaling/v2"}, {"kind", "HorizontalPodAutoscaler"}, {"name", "podinfo"}};
    canary["spec"]["analysis"]["interval"] = "2s";
    canary["spec"]["analysis"]["metrics"] =
        json::array({{{"name", "error-rate"},
                      {"templateRef", {{"name", "error-rate"}, {"namespace", kNs}}},
                      {"thresholdRange", {{"max", 1}}},
                      {"interval", "10s"}}});

    canarycontroller::Options o = defaultOptions();
    o.metricProviders = nullptr;             // the real Prometheus client
    o.metricsServer = "http://127.0.0.1:1";  // unused: the template names its server
    startController(o);
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));

    // 1. After initialisation: podinfo-primary HPA scales podinfo-primary with the target HPA's
    // min/max, metrics and behaviour, owned by the Canary.
    auto primaryHpa = hpa("podinfo-primary");
    ASSERT_TRUE(primaryHpa);
    const json initialTargetSpec = (*hpa("podinfo"))["spec"];
    EXPECT_EQ(
        (*primaryHpa)["spec"]["scaleTargetRef"],
        json({{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "podinfo-primary"}}));
    EXPECT_EQ((*primaryHpa)["spec"]["minReplicas"], 2);
    EXPECT_EQ((*primaryHpa)["spec"]["maxReplicas"], 4);
    EXPECT_EQ((*primaryHpa)["spec"]["metrics"], initialTargetSpec["metrics"]);
    EXPECT_EQ((*primaryHpa)["spec"], forPrimary(initialTargetSpec));
    EXPECT_EQ((*primaryHpa)["metadata"]["ownerReferences"][0].value("kind", ""), "Canary");
    EXPECT_TRUE(sawAction("InitializePrimaryAutoscaler"));

    // The HPA controller scales the primary (another field manager than the Canary's).
    kube::PatchOptions hpaManager;
    hpaManager.fieldManager = "horizontal-pod-autoscaler";
    auto hpaScalesPrimary = [&](int replicas) {
        client_->patch(kDeploymentGvk, kNs, "podinfo-primary", kube::PatchType::Merge,
                       json({{"spec", {{"replicas", replicas}}}}).dump(), hpaManager);
    };
    hpaScalesPrimary(3);
    ASSERT_TRUE(eventually([&] { return replicasOf("podinfo-primary") == 3; }));

    // 2. The target's HPA changes (maxReplicas, the CPU and requests targets) together with a
    // new pod template revision; the analysis is judged by Prometheus.
    client_->patch(hpaGvk, kNs, "podinfo", kube::PatchType::Merge,
                   json({{"spec", targetHpa(8, 60, "25")["spec"]}}).dump());
    const json newTargetSpec = (*hpa("podinfo"))["spec"];
    ASSERT_EQ(newTargetSpec["maxReplicas"], 8);
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] {
        const json st = status("podinfo");
        return st.value("phase", "") == "Progressing" && st.value("canaryWeight", 0) > 0;
    })) << status("podinfo").dump(2);
    // Mid-analysis the primary's HPA still has the spec of the revision the primary runs (it
    // follows at promotion), and the HPA controller scales the primary up under load.
    EXPECT_EQ((*hpa("podinfo-primary"))["spec"], forPrimary(initialTargetSpec));
    hpaScalesPrimary(5);
    ASSERT_TRUE(eventually([&] { return replicasOf("podinfo-primary") == 5; }));

    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }, 120s))
        << status("podinfo").dump(2) << prom.log();
    EXPECT_GT(canaryPod.metrics.requests(200), 0u);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_TRUE(sawAction("CopyAutoscalerToPrimary"));

    // 3. After promotion the primary's HPA follows the target HPA's new spec.
    primaryHpa = hpa("podinfo-primary");
    ASSERT_TRUE(primaryHpa);
    EXPECT_EQ((*primaryHpa)["spec"]["maxReplicas"], 8);
    EXPECT_EQ((*primaryHpa)["spec"]["metrics"], newTargetSpec["metrics"]);
    EXPECT_EQ((*primaryHpa)["spec"], forPrimary(newTargetSpec));
    EXPECT_EQ((*hpa("podinfo"))["spec"]["scaleTargetRef"]["name"], "podinfo");

    // The primary's replicas stayed the HPA's through the promotion: the Canary's apply left
    // spec.replicas out, so it does not own them.
    auto primary = deploymentObject("podinfo-primary");
    ASSERT_TRUE(primary);
    EXPECT_EQ((*primary)["spec"].value("replicas", -1), 5);
    EXPECT_FALSE(ownsReplicas(*primary, o.fieldManager, "Apply"))
        << (*primary)["metadata"]["managedFields"].dump(2);
    EXPECT_TRUE(ownsReplicas(*primary, hpaManager.fieldManager, "Update"))
        << (*primary)["metadata"]["managedFields"].dump(2);
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 0; }));
    EXPECT_EQ(controller_->stats().errors, 0u);
}

}  // namespace
}  // namespace sluice::canarytest
