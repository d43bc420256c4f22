// The Canary spec fields the routers and the controller's metric queries read: parsed into
// CanarySpec with the spec's usual validation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/canaryengine/spec.h"

namespace sluice::canaryengine {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace std::chrono_literals;

json minimalSpec() {
    return json::parse(R"({
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
        "service": {"port": 80},
        "analysis": {"interval": "30s", "threshold": 2, "stepWeight": 10}
    })");
}

TEST(CanarySpecFields, AbsentFieldsHaveTheirDefaults) {
    SpecParseResult result = parseCanarySpec(minimalSpec());
    ASSERT_TRUE(result.ok());
    const CanarySpec& spec = result.spec;
    EXPECT_EQ(spec.metricsServer, "");
    EXPECT_EQ(spec.ingressRef.name, "");
    EXPECT_EQ(spec.apexServiceName(), "app");
    EXPECT_EQ(spec.service.name, "");
    EXPECT_EQ(spec.service.appProtocol, "");
    EXPECT_FALSE(spec.service.portDiscovery);
    EXPECT_EQ(spec.service.timeout, "");
    EXPECT_EQ(spec.service.match, json::array());
    EXPECT_EQ(spec.service.rewrite.uri, "");
    EXPECT_TRUE(spec.service.retries.is_null());
    EXPECT_TRUE(spec.service.corsPolicy.is_null());
    EXPECT_TRUE(spec.service.trafficPolicy.is_null());
    EXPECT_THAT(spec.service.apex.labels, IsEmpty());
    EXPECT_FALSE(spec.analysis.mirrorWeight);
    EXPECT_EQ(spec.analysis.match, json::array());
}

TEST(CanarySpecFields, TopLevelRefsAndServer) {
    json raw = minimalSpec();
    raw["metricsServer"] = "http://prom.monitoring:9090";
    raw["ingressRef"] = {
        {"apiVersion", "networking.k8s.io/v1"}, {"kind", "Ingress"}, {"name", "web"}};
    raw["service"]["name"] = "web-svc";
    SpecParseResult result = parseCanarySpec(raw);
    ASSERT_TRUE(result.ok()) << result.errors.front();
    EXPECT_EQ(result.spec.metricsServer, "http://prom.monitoring:9090");
    EXPECT_EQ(result.spec.ingressRef.apiVersion, "networking.k8s.io/v1");
    EXPECT_EQ(result.spec.ingressRef.kind, "Ingress");
    EXPECT_EQ(result.spec.ingressRef.name, "web");
    EXPECT_EQ(result.spec.apexServiceName(), "web-svc");
}

TEST(CanarySpecFields, ServiceRoutingOptions) {
    json raw = minimalSpec();
    raw["service"] = json::parse(R"({
      "port": 80, "appProtocol": "http", "portDiscovery": true, "timeout": "15s",
      "match": [{"uri": {"prefix": "/api"}}],
      "rewrite": {"uri": "/", "authority": "backend.local", "type": "ReplaceFullPath"},
      "retries": {"attempts": 3},
      "corsPolicy": {"maxAge": "24h"},
      "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
      "apex": {"labels": {"tier": "edge"}, "annotations": {"note": "apex"}},
      "primary": {"labels": {"role": "stable"}},
      "canary": {"annotations": {"role": "candidate"}},
      "gatewayRefs": [{"name": "gw", "namespace": "infra", "group": "", "kind": "Gateway",
                       "sectionName": "https", "port": 443},
                      {"name": "plain"}]})");
    SpecParseResult result = parseCanarySpec(raw);
    ASSERT_TRUE(result.ok()) << result.errors.front();
    const ServiceSpec& service = result.spec.service;
    EXPECT_EQ(service.appProtocol, "http");
    EXPECT_TRUE(service.portDiscovery);
    EXPECT_EQ(service.timeout, "15s");
    EXPECT_EQ(service.match, raw["service"]["match"]);
    EXPECT_EQ(service.rewrite.uri, "/");
    EXPECT_EQ(service.rewrite.authority, "backend.local");
    EXPECT_EQ(service.rewrite.type, "ReplaceFullPath");
    EXPECT_EQ(service.retries, raw["service"]["retries"]);
    EXPECT_EQ(service.corsPolicy, raw["service"]["corsPolicy"]);
    EXPECT_EQ(service.trafficPolicy, raw["service"]["trafficPolicy"]);
    EXPECT_EQ(service.apex.labels, (std::map<std::string, std::string>{{"tier", "edge"}}));
    EXPECT_EQ(service.apex.annotations, (std::map<std::string, std::string>{{"note", "apex"}}));
    EXPECT_EQ(service.primary.labels, (std::map<std::string, std::string>{{"role", "stable"}}));
    EXPECT_EQ(service.canary.annotations,
              (std::map<std::string, std::string>{{"role", "candidate"}}));
    ASSERT_EQ(service.gatewayRefs.size(), 2u);
    const GatewayRef& gw = service.gatewayRefs[0];
    EXPECT_EQ(gw.name, "gw");
    EXPECT_EQ(gw.namespaceName, "infra");
    EXPECT_EQ(gw.group, "") << "the core group is kept apart from an absent one";
    EXPECT_EQ(gw.kind, "Gateway");
    EXPECT_EQ(gw.sectionName, "https");
    EXPECT_EQ(gw.port, 443);
    const GatewayRef& plain = service.gatewayRefs[1];
    EXPECT_FALSE(plain.group);
    EXPECT_FALSE(plain.kind);
    EXPECT_FALSE(plain.port);
}

TEST(CanarySpecFields, ServiceRoutingOptionsOfTheWrongType) {
    json raw = minimalSpec();
    raw["service"] = json::parse(R"({
      "port": 80, "name": 7, "portDiscovery": "yes", "match": {"uri": {"prefix": "/"}},
      "rewrite": "/", "retries": 3, "corsPolicy": [], "trafficPolicy": "tls",
      "apex": {"labels": {"tier": 1}}, "canary": "x",
      "gatewayRefs": [{"name": "gw", "port": 0}]})");
    SpecParseResult result = parseCanarySpec(raw);
    EXPECT_THAT(
        result.errors,
        ElementsAre(
            "spec.service.name: must be a string", "spec.service.portDiscovery: must be a boolean",
            "spec.service.gatewayRefs[0].port: must be between 1 and 65535, got 0",
            "spec.service.match: must be a list", "spec.service.rewrite: must be an object",
            "spec.service.retries: must be an object", "spec.service.corsPolicy: must be an object",
            "spec.service.trafficPolicy: must be an object",
            "spec.service.apex.labels.tier: must be a string",
            "spec.service.canary: must be an object"));
    EXPECT_EQ(result.spec.service.match, json::array());
}

TEST(CanarySpecFields, AnalysisMatchAndMirrorWeight) {
    json raw = minimalSpec();
    raw["analysis"]["match"] = json::parse(R"([{"headers": {"x-canary": {"exact": "1"}}}])");
    raw["analysis"]["mirrorWeight"] = 25;
    SpecParseResult result = parseCanarySpec(raw);
    ASSERT_TRUE(result.ok()) << result.errors.front();
    EXPECT_EQ(result.spec.analysis.match, raw["analysis"]["match"]);
    EXPECT_EQ(result.spec.analysis.mirrorWeight, 25);

    // The pre-v1beta1 name reads the same.
    json legacy = minimalSpec();
    legacy["canaryAnalysis"] = legacy["analysis"];
    legacy.erase("analysis");
    legacy["canaryAnalysis"]["match"] = raw["analysis"]["match"];
    result = parseCanarySpec(legacy);
    ASSERT_TRUE(result.ok()) << result.errors.front();
    EXPECT_EQ(result.spec.analysis.match, raw["analysis"]["match"]);

    raw["analysis"]["match"] = json::array({"x-canary"});
    raw["analysis"]["mirrorWeight"] = 150;
    result = parseCanarySpec(raw);
    EXPECT_THAT(result.errors,
                ElementsAre("spec.analysis.mirrorWeight: must be between 0 and 100, got 150",
                            "spec.analysis.match[0]: must be an object"));
}

TEST(CanarySpecFields, MetricIntervalDefaultsToTheAnalysisInterval) {
    json raw = minimalSpec();
    raw["analysis"]["metrics"] = json::parse(R"([
      {"name": "own", "interval": "2m", "thresholdRange": {"min": 99}},
      {"name": "inherited", "thresholdRange": {"min": 99}}])");
    SpecParseResult result = parseCanarySpec(raw);
    ASSERT_TRUE(result.ok()) << result.errors.front();
    EXPECT_EQ(result.spec.analysis.metrics[0].interval, Duration(2min));
    EXPECT_EQ(result.spec.analysis.metrics[1].interval, Duration(30s));
}

TEST(CanarySpecFields, MetricTemplateVariables) {
    json raw = minimalSpec();
    raw["analysis"]["metrics"] = json::parse(R"([
      {"name": "latency", "thresholdRange": {"max": 500},
       "templateRef": {"name": "latency"},
       "templateVariables": {"route": "/api", "quantile": 0.99}}])");
    SpecParseResult result = parseCanarySpec(raw);
    ASSERT_TRUE(result.ok()) << result.errors.front();
    // A value of another JSON type is its JSON text, as before it was typed.
    EXPECT_EQ(result.spec.analysis.metrics[0].templateVariables,
              (std::map<std::string, std::string>{{"route", "/api"}, {"quantile", "0.99"}}));

    raw["analysis"]["metrics"][0]["templateVariables"] = "route=/api";
    result = parseCanarySpec(raw);
    EXPECT_THAT(result.errors,
                ElementsAre("spec.analysis.metrics[0].templateVariables: must be an object"));
}

TEST(CanarySpecFields, RefsOfTheWrongType) {
    json raw = minimalSpec();
    raw["metricsServer"] = 9090;
    raw["ingressRef"] = "web";
    SpecParseResult result = parseCanarySpec(raw);
    EXPECT_THAT(result.errors, ElementsAre("spec.metricsServer: must be a string",
                                           "spec.ingressRef: must be an object"));
}

TEST(CanarySpecFields, Alerts) {
    json spec = minimalSpec();
    spec["analysis"]["alerts"] = json::parse(R"([
        {"name": "on-call", "severity": "error", "providerRef": {"name": "pager", "namespace": "ops"}},
        {"name": "team", "severity": "", "providerRef": {"name": "slack"}},
        {"name": "warnings", "severity": "warn", "providerRef": {"name": "teams"}}])");
    spec["analysis"]["webhooks"] = json::parse(
        R"([{"name": "gate", "type": "confirm-promotion", "url": "http://x/", "muteAlert": true}])");
    SpecParseResult result = parseCanarySpec(spec);
    ASSERT_TRUE(result.ok()) << result.errors[0];
    const auto& alerts = result.spec.analysis.alerts;
    ASSERT_EQ(alerts.size(), 3u);
    EXPECT_EQ(alerts[0].name, "on-call");
    EXPECT_EQ(alerts[0].severity, AlertSeverity::Error);
    EXPECT_EQ(alerts[0].providerName, "pager");
    EXPECT_EQ(alerts[0].providerNamespace, "ops");
    EXPECT_EQ(alerts[1].severity, AlertSeverity::Info);  // "" is info, as in Flagger
    EXPECT_EQ(alerts[1].providerNamespace, "");
    EXPECT_EQ(alerts[2].severity, AlertSeverity::Warn);
    EXPECT_EQ(toString(alerts[2].severity), "warn");
    EXPECT_TRUE(result.spec.analysis.webhooks[0].muteAlert);
}

TEST(CanarySpecFields, AlertErrors) {
    json spec = minimalSpec();
    spec["analysis"]["alerts"] =
        json::parse(R"([{"name": "a", "severity": "critical", "providerRef": {"name": "p"}},
                        {"name": "b", "severity": "info"}])");
    SpecParseResult result = parseCanarySpec(spec);
    ASSERT_EQ(result.errors.size(), 2u);
    EXPECT_NE(result.errors[0].find("severity: must be info, warn or error"), std::string::npos)
        << result.errors[0];
    EXPECT_NE(result.errors[1].find("providerRef.name"), std::string::npos) << result.errors[1];
}

}  // namespace
}  // namespace sluice::canaryengine
