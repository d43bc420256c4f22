#include <gtest/gtest.h>

#include "sluice/metricprovider/builtin.h"
#include "sluice/metricprovider/client.h"
#include "sluice/router/providers.h"

namespace sluice::metricprovider {
namespace {

TemplateModel model() {
    TemplateModel m;
    m.name = "podinfo";
    m.namespaceName = "test";
    m.target = "podinfo";
    m.service = "podinfo";
    m.ingress = "podinfo-ing";
    m.interval = "ignored";
    return m;
}

canaryengine::MetricSpec metric(std::string name,
                                std::chrono::milliseconds interval = std::chrono::minutes(1)) {
    canaryengine::MetricSpec m;
    m.name = std::move(name);
    m.interval = interval;
    return m;
}

std::string builtin(std::string_view provider, std::string_view name) {
    RenderResult r = analysisQuery(metric(std::string(name)), provider, model(), nullptr);
    EXPECT_TRUE(r.ok()) << r.error;
    return collapseWhitespace(r.query);
}

TEST(ObserverForProvider, MapsFlaggerProviderNames) {
    EXPECT_EQ(observerForProvider("istio"), Observer::Istio);
    EXPECT_EQ(observerForProvider("nginx"), Observer::Nginx);
    EXPECT_EQ(observerForProvider("gatewayapi"), Observer::Envoy);
    EXPECT_EQ(observerForProvider("gatewayapi:v1"), Observer::Envoy);
    EXPECT_EQ(observerForProvider("gatewayapi:v1beta1"), Observer::Envoy);
    EXPECT_EQ(observerForProvider("contour"), Observer::Envoy);
    EXPECT_EQ(observerForProvider("kubernetes"), Observer::Http);
    EXPECT_EQ(observerForProvider(""), Observer::Http);
    EXPECT_EQ(observerForProvider("linkerd"), Observer::Linkerd);
    EXPECT_EQ(observerForProvider("smi"), Observer::Istio) << "Flagger's fallback observer";
    EXPECT_EQ(observerForProvider("smi:v1alpha1:linkerd"), Observer::Istio);
    EXPECT_EQ(observerForProvider("osm"), std::nullopt);
    EXPECT_EQ(observerForProvider("gatewayapix"), std::nullopt);
}

// Every observer key of the provider table names an observer with queries.
TEST(ObserverForProvider, EveryTableKeyIsAnObserver) {
    for (const router::ProviderEntry& entry : router::providerTable()) {
        if (entry.observer.empty()) continue;
        auto observer = observerForProvider(entry.name);
        ASSERT_TRUE(observer) << entry.name;
        EXPECT_EQ(toString(*observer), entry.observer);
        EXPECT_FALSE(builtinQueryTemplate(*observer, BuiltinMetric::RequestDuration).empty());
    }
}

TEST(BuiltinMetric, Names) {
    EXPECT_EQ(parseBuiltinMetric("request-success-rate"), BuiltinMetric::RequestSuccessRate);
    EXPECT_EQ(parseBuiltinMetric("request-duration"), BuiltinMetric::RequestDuration);
    EXPECT_EQ(parseBuiltinMetric("error-rate"), std::nullopt);
    EXPECT_EQ(toString(BuiltinMetric::RequestDuration), "request-duration");
}

TEST(BuiltinQueries, Istio) {
    EXPECT_EQ(builtin("istio", "request-success-rate"),
              "sum(rate(istio_requests_total{reporter=\"destination\", "
              "destination_workload_namespace=\"test\", destination_workload=~\"podinfo\", "
              "response_code!~\"5.*\"}[1m])) / "
              "sum(rate(istio_requests_total{reporter=\"destination\", "
              "destination_workload_namespace=\"test\", destination_workload=~\"podinfo\"}[1m])) "
              "* 100");
    EXPECT_EQ(builtin("istio", "request-duration"),
              "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{"
              "reporter=\"destination\", destination_workload_namespace=\"test\", "
              "destination_workload=~\"podinfo\"}[1m])) by (le))");
}

TEST(BuiltinQueries, Nginx) {
    EXPECT_EQ(builtin("nginx", "request-success-rate"),
              "sum(rate(nginx_ingress_controller_requests{namespace=\"test\", "
              "ingress=\"podinfo-ing\", status!~\"5.*\"}[1m])) / "
              "sum(rate(nginx_ingress_controller_requests{namespace=\"test\", "
              "ingress=\"podinfo-ing\"}[1m])) * 100");
    EXPECT_EQ(builtin("nginx", "request-duration"),
              "histogram_quantile(0.99, "
              "sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{namespace="
              "\"test\", ingress=\"podinfo-ing\"}[1m])) by (le)) * 1000");
    // Without an ingressRef there is nothing to select on: an error, not an empty label.
    TemplateModel m = model();
    m.ingress.clear();
    RenderResult r = analysisQuery(metric("request-success-rate"), "nginx", m, nullptr);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find("ingressRef"), std::string::npos) << r.error;
}

TEST(BuiltinQueries, GatewayApiEnvoy) {
    std::string cluster = "envoy_cluster_name=~\"test_podinfo-canary_[0-9a-zA-Z-]+\"";
    EXPECT_EQ(builtin("gatewayapi:v1", "request-success-rate"),
              "sum(rate(envoy_cluster_upstream_rq{" + cluster +
                  ", envoy_response_code!~\"5.*\"}[1m])) / sum(rate(envoy_cluster_upstream_rq{" +
                  cluster + "}[1m])) * 100");
    EXPECT_EQ(builtin("gatewayapi", "request-duration"),
              "histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{" + cluster +
                  "}[1m])) by (le))");
}

TEST(BuiltinQueries, KubernetesDefault) {
    std::string sel =
        "kubernetes_namespace=\"test\", "
        "kubernetes_pod_name=~\"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"";
    EXPECT_EQ(builtin("kubernetes", "request-success-rate"), "sum(rate(http_requests_total{" + sel +
                                                                 ", status!~\"5.*\"}[1m])) / "
                                                                 "sum(rate(http_requests_total{" +
                                                                 sel + "}[1m])) * 100");
    EXPECT_EQ(builtin("", "request-duration"),
              "histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{" + sel +
                  "}[1m])) by (le)) * 1000");
}

TEST(BuiltinQueries, LinkerdProxyMetrics) {
    std::string sel = "namespace=\"test\", deployment=~\"podinfo\", direction=\"inbound\"";
    EXPECT_EQ(builtin("linkerd", "request-success-rate"),
              "sum(rate(response_total{" + sel +
                  ", classification!=\"failure\"}[1m])) / sum(rate(response_total{" + sel +
                  "}[1m])) * 100");
    EXPECT_EQ(
        builtin("linkerd", "request-duration"),
        "histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{" + sel + "}[1m])) by (le))");
}

TEST(BuiltinQueries, TraefikServiceMetrics) {
    std::string sel = "service=~\"test-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd\"";
    std::string metric = "traefik_service_request_duration_seconds_bucket";
    EXPECT_EQ(builtin("traefik", "request-success-rate"),
              "sum(rate(" + metric + "{" + sel + ", code!~\"5..\", le=\"+Inf\"}[1m])) / sum(rate(" +
                  metric + "{" + sel + ", le=\"+Inf\"}[1m])) * 100");
    EXPECT_EQ(
        builtin("traefik", "request-duration"),
        "histogram_quantile(0.99, sum(rate(" + metric + "{" + sel + "}[1m])) by (le)) * 1000");
    EXPECT_EQ(observerForProvider("traefik"), Observer::Traefik);
}

TEST(BuiltinQueries, GlooCanaryUpstream) {
    std::string sel = "envoy_cluster_name=~\"test-podinfo-canaryupstream-[0-9]+_test\"";
    EXPECT_EQ(builtin("gloo", "request-success-rate"),
              "sum(rate(envoy_cluster_upstream_rq{" + sel +
                  ", envoy_response_code!~\"5.*\"}[1m])) / sum(rate(envoy_cluster_upstream_rq{" +
                  sel + "}[1m])) * 100");
    EXPECT_EQ(builtin("gloo:gloo-system", "request-duration"),
              "histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{" + sel +
                  "}[1m])) by (le))");
}

TEST(BuiltinQueries, KumaMeshService) {
    std::string sel = "service=~\"podinfo-canary_test_svc_[0-9a-zA-Z-]+\"";
    EXPECT_EQ(builtin("kuma", "request-success-rate"),
              "sum(rate(envoy_cluster_upstream_rq{" + sel +
                  ", envoy_response_code!~\"5.*\"}[1m])) / sum(rate(envoy_cluster_upstream_rq{" +
                  sel + "}[1m])) * 100");
    EXPECT_EQ(builtin("kuma", "request-duration"),
              "histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{" + sel +
                  "}[1m])) by (le))");
}

TEST(BuiltinQueries, SkipperRoutesWithWordNames) {
    // podinfo-ing becomes podinfo_ing, as Skipper names its routes.
    std::string route =
        "route=~\"kube(ew)?_test__podinfo_ing_canary__.*__podinfo_canary(_[0-9]+)?\"";
    std::string metric = "skipper_response_duration_seconds_bucket";
    EXPECT_EQ(builtin("skipper", "request-success-rate"),
              "sum(rate(" + metric + "{" + route +
                  ", code!~\"5..\", le=\"+Inf\"}[1m])) / sum(rate(" + metric + "{" + route +
                  ", le=\"+Inf\"}[1m])) * 100");
    EXPECT_EQ(builtin("skipper", "request-duration"),
              "sum(rate(skipper_serve_route_duration_seconds_sum{" + route +
                  "}[1m])) / sum(rate(skipper_serve_route_duration_seconds_count{" + route +
                  "}[1m])) * 1000");
}

TEST(BuiltinQueries, ApisixCanaryRoute) {
    TemplateModel m = model();
    m.route = "podinfo-route";
    RenderResult r = analysisQuery(metric("request-success-rate"), "apisix", m, nullptr);
    ASSERT_TRUE(r.ok()) << r.error;
    std::string sel = "route=~\"test_podinfo-route-canary_.+\"";
    EXPECT_EQ(collapseWhitespace(r.query), "sum(rate(apisix_http_status{" + sel +
                                               ", code!~\"5.*\"}[1m])) / "
                                               "sum(rate(apisix_http_status{" +
                                               sel + "}[1m])) * 100");
    r = analysisQuery(metric("request-duration"), "apisix", m, nullptr);
    EXPECT_EQ(collapseWhitespace(r.query),
              "histogram_quantile(0.99, sum(rate(apisix_http_latency_bucket{type=~\"request\", " +
                  sel + "}[1m])) by (le))");
    // Without routeRef the placeholder is empty: an error that says so.
    r = analysisQuery(metric("request-duration"), "apisix", model(), nullptr);
    EXPECT_NE(r.error.find("routeRef"), std::string::npos) << r.error;
}

TEST(BuiltinQueries, AppMeshCanaryPods) {
    std::string sel =
        "kubernetes_namespace=\"test\", "
        "kubernetes_pod_name=~\"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"";
    EXPECT_EQ(builtin("appmesh:v1beta2", "request-success-rate"),
              "sum(rate(envoy_cluster_upstream_rq{" + sel +
                  ", envoy_response_code!~\"5.*\"}[1m])) / sum(rate(envoy_cluster_upstream_rq{" +
                  sel + "}[1m])) * 100");
    EXPECT_EQ(builtin("appmesh:v1beta2", "request-duration"),
              "histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{" + sel +
                  "}[1m])) by (le))");
}

TEST(BuiltinQueries, MetricIntervalBecomesTheRange) {
    RenderResult r = analysisQuery(metric("request-success-rate", std::chrono::seconds(90)),
                                   "istio", model(), nullptr);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_NE(r.query.find("[1m30s]"), std::string::npos) << r.query;
    EXPECT_EQ(r.query.find("ignored"), std::string::npos);
}

TEST(AnalysisQuery, TemplateRefWinsAndIsRendered) {
    canaryengine::MetricSpec m = metric("request-success-rate");
    m.templateRef = canaryengine::TemplateRef{"error-rate", "bifrost"};
    m.query = "inline_is_ignored";
    TemplateModel tm = model();
    tm.variables["code"] = "503";
    std::string tmpl =
        "sum(x{ns=\"{{ namespace }}\",code=\"{{ variables.code }}\"}[{{ interval }}])";
    RenderResult r = analysisQuery(m, "istio", tm, &tmpl);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.query, "sum(x{ns=\"test\",code=\"503\"}[1m])");

    r = analysisQuery(m, "istio", tm, nullptr);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find("MetricTemplate bifrost/error-rate not found"), std::string::npos)
        << r.error;

    std::string bad = "{{ nope }}";
    r = analysisQuery(m, "istio", tm, &bad);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error.rfind("metric request-success-rate: ", 0), 0u) << r.error;
}

TEST(AnalysisQuery, InlineQueryThenBuiltin) {
    canaryengine::MetricSpec m = metric("request-success-rate");
    m.query = "sum(up{namespace=\"{{ namespace }}\"})";
    RenderResult r = analysisQuery(m, "istio", model(), nullptr);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.query, "sum(up{namespace=\"test\"})");
}

TEST(AnalysisQuery, UnknownMetricOrProviderIsAnError) {
    RenderResult r = analysisQuery(metric("error-rate"), "istio", model(), nullptr);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find("not a built-in"), std::string::npos) << r.error;
    r = analysisQuery(metric("request-duration"), "osm", model(), nullptr);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find("\"osm\""), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("linkerd"), std::string::npos) << "lists the providers: " << r.error;
}

}  // namespace
}  // namespace sluice::metricprovider
