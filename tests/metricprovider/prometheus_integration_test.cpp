// PrometheusClient and the built-in queries against a real Prometheus server scraping test
// exporters on 127.0.0.1 whose request counts and latencies the test sets.
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <thread>

#include "prometheus/http_metrics.h"
#include "prometheus/prometheus_server.h"
#include "sluice/metricprovider/builtin.h"
#include "sluice/metricprovider/client.h"
#include "sluice/metricprovider/metric_template.h"
#include "sluice/util/yaml_json.h"
#include "testutil/testutil.h"

namespace sluice::metricprovider {
namespace {

using Kind = canaryengine::MetricResult::Kind;
using namespace std::chrono_literals;

// Polls the query until done(result); the last result otherwise.
canaryengine::MetricResult pollUntil(
    MetricProvider& provider, const std::string& query,
    const std::function<bool(const canaryengine::MetricResult&)>& done,
    std::chrono::milliseconds timeout = 30s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    canaryengine::MetricResult r;
    while (std::chrono::steady_clock::now() < deadline) {
        r = provider.query(query);
        if (done(r)) return r;
        std::this_thread::sleep_for(100ms);
    }
    return r;
}

// Polls the query until it yields a value (rate() needs two scrapes first); the last result
// otherwise.
canaryengine::MetricResult pollValue(MetricProvider& provider, const std::string& query) {
    return pollUntil(provider, query,
                     [](const canaryengine::MetricResult& r) { return r.kind == Kind::Value; });
}

std::string builtin(const char* name, const std::string& target, const std::string& interval) {
    TemplateModel m;
    m.name = m.target = m.service = target;
    m.namespaceName = "shop";
    canaryengine::MetricSpec metric;
    metric.name = name;
    metric.interval = *canaryengine::parseGoDuration(interval);
    RenderResult r = analysisQuery(metric, "kubernetes", m, nullptr);
    EXPECT_TRUE(r.ok()) << r.error;
    return r.query;
}

// One test case on purpose: each case runs in its own process, and a Prometheus needs ~6 s
// before its first scrape.
TEST(PrometheusIntegration, BuiltinQueriesAgainstARealServer) {
    ASSERT_FALSE(testing::findPrometheusBinary().empty()) << testing::prometheusMissingMessage();

    // Canary pods (app-<rs>-<pod>) answer 90% successfully in ~200 ms; the primary
    // (app-primary-...) fails everything slowly, so any leak of it into the canary's numbers
    // shows. An idle pod exports counters that never move (0/0 = NaN).
    testing::MetricsExporter canaryPod, primaryPod, idlePod;
    idlePod.metrics.record(200, 0.01s, 50);
    testing::PrometheusOptions opts;
    opts.targets = {
        {"app",
         canaryPod.address(),
         {{"kubernetes_namespace", "shop"},
          {"kubernetes_pod_name", "app-7d9f8b6c5-x2x4z"},
          {"namespace", "shop"},
          {"pod", "app-7d9f8b6c5-x2x4z"}}},
        {"app",
         primaryPod.address(),
         {{"kubernetes_namespace", "shop"},
          {"kubernetes_pod_name", "app-primary-6c7d8e9f0-abcde"},
          {"namespace", "shop"},
          {"pod", "app-primary-6c7d8e9f0-abcde"}}},
        {"idle",
         idlePod.address(),
         {{"kubernetes_namespace", "shop"}, {"kubernetes_pod_name", "idle-5d8f7c9b6-q1w2e"}}},
    };
    testing::PrometheusServer prom(opts);
    prom.start();

    testing::TrafficLoop traffic(
        [&] {
            canaryPod.metrics.record(200, 0.2s, 9);
            canaryPod.metrics.record(503, 0.2s, 1);
            primaryPod.metrics.record(500, 3s, 5);
        },
        50ms);

    ASSERT_TRUE(prom.waitForTargetsUp(30s)) << prom.log();

    ClientOptions co;
    co.address = prom.url();
    PrometheusClient client(co);
    auto health = client.health();
    EXPECT_TRUE(health.ok) << health.message;

    // request-success-rate: 9 of every 10 canary requests succeed.
    auto rate = pollValue(client, builtin("request-success-rate", "app", "10s"));
    ASSERT_EQ(rate.kind, Kind::Value) << rate.reason << "\n" << prom.log();
    EXPECT_NEAR(rate.value, 90.0, 1.5);

    // request-duration: every canary request lands in the (100 ms, 250 ms] bucket, so the
    // interpolated p99 is inside it (the primary's 3 s would be far above).
    auto duration = pollValue(client, builtin("request-duration", "app", "10s"));
    ASSERT_EQ(duration.kind, Kind::Value) << duration.reason;
    EXPECT_GT(duration.value, 100.0);
    EXPECT_LE(duration.value, 250.0);

    // The stepped-canary example's MetricTemplate (error percentage on namespace/pod labels).
    std::optional<MetricTemplate> errorRate;
    for (const auto& doc :
         yamlDocumentsToJson(testing::readFile(testing::examplePath("stepped-canary.yaml"))))
        if (doc.value("kind", "") == "MetricTemplate")
            errorRate = parseMetricTemplate(doc).metricTemplate;
    ASSERT_TRUE(errorRate);
    TemplateModel model;
    model.name = model.target = model.service = "app";
    model.namespaceName = "shop";
    model.interval = "10s";
    RenderResult rendered = renderQuery(errorRate->query, model);
    ASSERT_TRUE(rendered.ok()) << rendered.error;
    auto errors = pollValue(client, rendered.query);
    ASSERT_EQ(errors.kind, Kind::Value) << errors.reason;
    EXPECT_NEAR(errors.value, 10.0, 1.5);

    // Counters that do not move: 0/0 is NaN, which is no data, never a pass.
    auto idle = pollUntil(client, builtin("request-success-rate", "idle", "10s"),
                          [](const canaryengine::MetricResult& r) {
                              return r.reason.find("NaN") != std::string::npos;
                          });
    EXPECT_EQ(idle.kind, Kind::NoData) << idle.reason;
    EXPECT_NE(idle.reason.find("NaN"), std::string::npos) << idle.reason;

    // A workload nobody exports: an empty vector.
    auto absent = client.query(builtin("request-success-rate", "ghost", "10s"));
    EXPECT_EQ(absent.kind, Kind::NoData) << absent.reason;

    // A PromQL error comes back with Prometheus' own message.
    auto bad = client.query("sum(rate(http_requests_total[10s])");
    EXPECT_EQ(bad.kind, Kind::QueryError);
    EXPECT_NE(bad.reason.find("bad_data"), std::string::npos) << bad.reason;

    // A range vector is not a single value.
    auto matrix = client.query("http_requests_total[5s]");
    EXPECT_EQ(matrix.kind, Kind::QueryError) << matrix.reason;

    // Prometheus gone: query errors, not stale values.
    prom.stop();
    auto down = client.query(builtin("request-success-rate", "app", "10s"));
    EXPECT_EQ(down.kind, Kind::QueryError) << down.reason;
    EXPECT_FALSE(client.health().ok);

    // Back on the same port with its data: values again.
    prom.start();
    auto back = pollValue(client, builtin("request-success-rate", "app", "10s"));
    ASSERT_EQ(back.kind, Kind::Value) << back.reason << "\n" << prom.log();
    EXPECT_NEAR(back.value, 90.0, 1.5);
}

}  // namespace
}  // namespace sluice::metricprovider
