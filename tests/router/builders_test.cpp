// Unit tests of the router builders: object shapes (Flagger's), options passed through, errors,
// and the weights each router reads back from what it built.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

#include "router_test_util.h"
#include "sluice/router/apply.h"
#include "sluice/router/providers.h"
#include "sluice/router/router.h"

namespace sluice::router {
namespace {

using nlohmann::json;
using testutil::contextOf;
using testutil::exampleCanary;

json deploymentWithLabels(json matchLabels) {
    return {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", "web"}}},
            {"spec", {{"selector", {{"matchLabels", std::move(matchLabels)}}}}}};
}

// A stepped canary with the given extra service fields and analysis.match.
json gatewayCanary(json serviceExtra = json::object(), json analysisMatch = nullptr) {
    json canary = exampleCanary("stepped-canary.yaml");
    if (!serviceExtra.is_null()) canary["spec"]["service"].update(serviceExtra);
    if (!analysisMatch.is_null()) canary["spec"]["analysis"]["match"] = analysisMatch;
    return canary;
}

json istioCanary(json serviceExtra = json::object(), json analysisExtra = json::object()) {
    json canary = exampleCanary("canary.yaml");
    canary["spec"]["provider"] = "istio";
    if (!serviceExtra.is_null()) canary["spec"]["service"].update(serviceExtra);
    if (!analysisExtra.is_null()) canary["spec"]["analysis"].update(analysisExtra);
    return canary;
}

json sourceIngress() {
    return json::parse(R"({
      "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
      "metadata": {"name": "web", "namespace": "blessed-horizon", "uid": "ing-uid",
        "resourceVersion": "17", "labels": {"team": "growth"},
        "annotations": {"kubernetes.io/ingress.class": "nginx",
          "nginx.ingress.kubernetes.io/canary-by-header": "stale",
          "kubectl.kubernetes.io/last-applied-configuration": "{}",
          "nginx.ingress.kubernetes.io/proxy-body-size": "8m"}},
      "spec": {"ingressClassName": "nginx",
        "rules": [
          {"host": "api.blessedhorizon.org", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "campaign-service", "port": {"number": 80}}}},
            {"path": "/static", "pathType": "Prefix",
             "backend": {"service": {"name": "cdn", "port": {"number": 80}}}}]}}]}})");
}

json nginxCanary(json analysisMatch = nullptr) {
    json canary = exampleCanary("canary.yaml");
    canary["spec"]["provider"] = "nginx";
    canary["spec"]["ingressRef"] = {
        {"apiVersion", "networking.k8s.io/v1"}, {"kind", "Ingress"}, {"name", "web"}};
    if (!analysisMatch.is_null()) canary["spec"]["analysis"]["match"] = analysisMatch;
    return canary;
}

// The one object of a kind among built objects.
json only(const std::vector<kube::Object>& objects, const std::string& kind) {
    json found;
    for (const auto& object : objects) {
        if (object["kind"] == kind) {
            EXPECT_TRUE(found.is_null()) << "two " << kind;
            found = object;
        }
    }
    EXPECT_FALSE(found.is_null()) << "no " << kind;
    return found;
}

// --- context and Services ------------------------------------------------------------------

TEST(RouterContext, SelectorLabelFollowsFlaggersPreference) {
    EXPECT_EQ(selectorOf(deploymentWithLabels({{"app", "a"}, {"name", "n"}})),
              (PodSelector{"app", "a"}));
    EXPECT_EQ(selectorOf(deploymentWithLabels(
                  {{"app.kubernetes.io/name", "k"}, {"name", "n"}, {"tier", "web"}})),
              (PodSelector{"name", "n"}));
    EXPECT_EQ(selectorOf(deploymentWithLabels({{"app.kubernetes.io/name", "k"}})),
              (PodSelector{"app.kubernetes.io/name", "k"}));
    EXPECT_EQ(selectorOf(deploymentWithLabels({{"tier", "web"}})), std::nullopt);
    EXPECT_EQ(selectorOf(deploymentWithLabels({{"tier", "web"}}), {"tier"}),
              (PodSelector{"tier", "web"}));
    EXPECT_EQ(selectorOf(json::object()), std::nullopt);
}

TEST(RouterContext, FromCanaryObject) {
    RouteContext ctx = contextOf(exampleCanary("canary.yaml"), "u-42");
    EXPECT_EQ(ctx.canaryName, "campaign-service");
    EXPECT_EQ(ctx.namespaceName, "blessed-horizon");
    EXPECT_EQ(ctx.canaryUid, "u-42");
    EXPECT_EQ(ctx.canaryApiVersion, "sluice.io/v1alpha1");
    EXPECT_EQ(ctx.canaryKind, "Canary");
    EXPECT_EQ(ctx.apexServiceName(), "campaign-service");
    EXPECT_EQ(ctx.primaryServiceName(), "campaign-service-primary");
    EXPECT_EQ(ctx.canaryServiceName(), "campaign-service-canary");
    EXPECT_FALSE(ctx.abTesting());

    json renamed = exampleCanary("canary.yaml");
    renamed["spec"]["service"]["name"] = "campaign";
    EXPECT_EQ(contextOf(renamed).primaryServiceName(), "campaign-primary");

    json legacy = exampleCanary("canary.yaml");
    legacy["spec"]["canaryAnalysis"] = legacy["spec"]["analysis"];
    legacy["spec"].erase("analysis");
    legacy["spec"]["canaryAnalysis"]["match"] = json::parse(R"([{"headers":{"x":{"exact":"1"}}}])");
    EXPECT_TRUE(contextOf(legacy).abTesting());
}

TEST(RouterContext, InvalidSpecIsAnError) {
    json canary = exampleCanary("canary.yaml");
    canary["spec"].erase("targetRef");
    try {
        makeRouteContext(canary, PodSelector{"app", "campaign-service"});
        FAIL() << "expected RouterError";
    } catch (const RouterError& error) {
        EXPECT_NE(std::string(error.what()).find("targetRef"), std::string::npos) << error.what();
    }
}

TEST(RouterServices, FlaggerServicesFromExample) {
    RouteContext ctx = contextOf(exampleCanary("canary.yaml"));
    std::vector<kube::Object> services = buildServices(ctx);
    ASSERT_EQ(services.size(), 3u);
    const json port = {{"name", "http"}, {"protocol", "TCP"}, {"port", 80}, {"targetPort", 8080}};
    auto expected = [&](const std::string& name, const std::string& selects) {
        return json{
            {"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata",
             {{"name", name}, {"namespace", "blessed-horizon"}, {"labels", {{"app", name}}}}},
            {"spec",
             {{"type", "ClusterIP"},
              {"selector", {{"app", selects}}},
              {"ports", json::array({port})}}}};
    };
    EXPECT_EQ(services[0], expected("campaign-service", "campaign-service-primary"));
    EXPECT_EQ(services[1], expected("campaign-service-primary", "campaign-service-primary"));
    EXPECT_EQ(services[2], expected("campaign-service-canary", "campaign-service"));
    EXPECT_EQ(buildService(ctx, ServiceRole::Apex, ApexSelects::Canary)["spec"]["selector"],
              json({{"app", "campaign-service"}}));
}

TEST(RouterServices, PortsAndCustomMetadata) {
    // No targetPort: the port itself.
    json stepped = exampleCanary("stepped-canary.yaml");
    json port = buildService(contextOf(stepped), ServiceRole::Primary)["spec"]["ports"][0];
    EXPECT_EQ(port["targetPort"], 8080);

    json canary = exampleCanary("canary.yaml");
    canary["spec"]["service"].update(json::parse(R"({
      "portName": "grpc", "targetPort": "grpc-port", "appProtocol": "grpc",
      "apex": {"labels": {"tier": "edge"}, "annotations": {"note": "apex"}},
      "canary": {"labels": {"track": "canary"}}})"));
    RouteContext ctx = makeRouteContext(canary, PodSelector{"app.kubernetes.io/name", "campaign"});
    json apex = buildService(ctx, ServiceRole::Apex);
    EXPECT_EQ(apex["spec"]["ports"][0], json::parse(R"({"name":"grpc","protocol":"TCP","port":80,
        "targetPort":"grpc-port","appProtocol":"grpc"})"));
    EXPECT_EQ(apex["spec"]["selector"], json({{"app.kubernetes.io/name", "campaign-primary"}}));
    EXPECT_EQ(apex["metadata"]["labels"],
              json({{"tier", "edge"}, {"app.kubernetes.io/name", "campaign-service"}}));
    EXPECT_EQ(apex["metadata"]["annotations"], json({{"note", "apex"}}));
    json canaryService = buildService(ctx, ServiceRole::Canary);
    EXPECT_EQ(canaryService["metadata"]["labels"]["track"], "canary");
    EXPECT_FALSE(canaryService["metadata"].contains("annotations"));
    EXPECT_EQ(canaryService["spec"]["selector"], json({{"app.kubernetes.io/name", "campaign"}}));

    RouteContext noSelector = ctx;
    noSelector.selector = {};
    EXPECT_THROW(buildService(noSelector, ServiceRole::Apex), RouterError);
}

// --- Gateway API ---------------------------------------------------------------------------

TEST(GatewayApiRouter, FlaggerShapeFromSteppedExample) {
    RouteContext ctx = contextOf(exampleCanary("stepped-canary.yaml"));
    GatewayApiRouter router;
    std::vector<kube::Object> objects = router.build(ctx, Weights::forCanary(5));
    ASSERT_EQ(objects.size(), 1u);
    EXPECT_EQ(objects[0], json::parse(R"({
      "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
      "metadata": {"name": "bifrost-api", "namespace": "bifrost"},
      "spec": {
        "parentRefs": [{"name": "public", "namespace": "gateway-system"}],
        "rules": [{
          "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
          "backendRefs": [
            {"group": "", "kind": "Service", "name": "bifrost-api-primary", "port": 8080,
             "weight": 95},
            {"group": "", "kind": "Service", "name": "bifrost-api-canary", "port": 8080,
             "weight": 5}]}]}})"));
    EXPECT_EQ(router.weightsObject(ctx),
              (ObjectRef{"gateway.networking.k8s.io/v1", "HTTPRoute", "bifrost", "bifrost-api"}));
    EXPECT_EQ(router.provider(), "gatewayapi:v1");
}

TEST(GatewayApiRouter, ServiceOptionsBecomeRouteFields) {
    json canary = gatewayCanary(json::parse(R"({
      "hosts": ["bifrost.example.com"],
      "gatewayRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                       "namespace": "gateway-system", "sectionName": "https", "port": 443}],
      "timeout": "30s",
      "match": [{"uri": {"prefix": "/api"}, "method": {"exact": "GET"}}],
      "rewrite": {"uri": "/v2", "authority": "internal.example.com"},
      "headers": {"request": {"set": {"x-b": "2", "x-a": "1"}, "remove": ["x-debug"]},
                  "response": {"add": {"x-served-by": "bifrost"}}},
      "apex": {"labels": {"tier": "edge"}, "annotations": {"team": "bifrost"}}})"));
    json route = GatewayApiRouter().build(contextOf(canary), Weights::forCanary(20))[0];
    EXPECT_EQ(route["metadata"]["labels"], json({{"tier", "edge"}}));
    EXPECT_EQ(route["metadata"]["annotations"], json({{"team", "bifrost"}}));
    EXPECT_EQ(route["spec"]["hostnames"], json({"bifrost.example.com"}));
    EXPECT_EQ(route["spec"]["parentRefs"], canary["spec"]["service"]["gatewayRefs"]);
    ASSERT_EQ(route["spec"]["rules"].size(), 1u);
    const json& rule = route["spec"]["rules"][0];
    EXPECT_EQ(rule["matches"], json::parse(R"([{"path": {"type": "PathPrefix", "value": "/api"},
                                               "method": "GET"}])"));
    EXPECT_EQ(rule["timeouts"], json({{"request", "30s"}}));
    EXPECT_EQ(rule["filters"], json::parse(R"([
      {"type": "RequestHeaderModifier", "requestHeaderModifier": {
         "set": [{"name": "x-a", "value": "1"}, {"name": "x-b", "value": "2"}],
         "remove": ["x-debug"]}},
      {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
         "add": [{"name": "x-served-by", "value": "bifrost"}]}},
      {"type": "URLRewrite", "urlRewrite": {"hostname": "internal.example.com",
         "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}}])"));
}

TEST(GatewayApiRouter, AbTestingAddsAHeaderMatchedRuleBeforeThePrimaryRule) {
    json canary = gatewayCanary(json::parse(R"({"match": [{"uri": {"prefix": "/api"}}]})"),
                                json::parse(R"([{"headers": {"x-canary": {"exact": "insider"}}},
                        {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}},
                         "queryParams": {"beta": {"exact": "1"}}}])"));
    RouteContext ctx = contextOf(canary);
    ASSERT_TRUE(ctx.abTesting());
    GatewayApiRouter router;
    json route = router.build(ctx, Weights::forCanary(100))[0];
    const json& rules = route["spec"]["rules"];
    ASSERT_EQ(rules.size(), 2u);
    EXPECT_EQ(rules[0]["matches"], json::parse(R"([
      {"path": {"type": "PathPrefix", "value": "/api"},
       "headers": [{"name": "x-canary", "type": "Exact", "value": "insider"}]},
      {"path": {"type": "PathPrefix", "value": "/api"},
       "headers": [{"name": "cookie", "type": "RegularExpression",
                    "value": "^(.*?;)?(canary=always)(;.*)?$"}],
       "queryParams": [{"name": "beta", "type": "Exact", "value": "1"}]}])"));
    EXPECT_EQ(rules[0]["backendRefs"][0]["weight"], 0);
    EXPECT_EQ(rules[0]["backendRefs"][1]["weight"], 100);
    EXPECT_EQ(rules[1]["matches"],
              json::parse(R"([{"path":{"type":"PathPrefix","value":"/api"}}])"));
    ASSERT_EQ(rules[1]["backendRefs"].size(), 1u);
    EXPECT_EQ(rules[1]["backendRefs"][0]["name"], "bifrost-api-primary");
    EXPECT_EQ(rules[1]["backendRefs"][0]["weight"], 100);
    EXPECT_EQ(router.readWeights(ctx, route), Weights::forCanary(100));
}

TEST(GatewayApiRouter, MirrorFilterOnTheWeightedRule) {
    RouteContext ctx = contextOf(gatewayCanary());
    GatewayApiRouter router;
    json route = router.build(ctx, Weights{100, 0, true})[0];
    EXPECT_EQ(route["spec"]["rules"][0]["filters"], json::parse(R"([{"type": "RequestMirror",
      "requestMirror": {"backendRef": {"group": "", "kind": "Service",
                                       "name": "bifrost-api-canary", "port": 8080}}}])"));
    EXPECT_EQ(router.readWeights(ctx, route), (Weights{100, 0, true}));
    EXPECT_FALSE(router.readWeights(ctx, router.build(ctx, Weights{})[0]).mirror);
}

TEST(GatewayApiRouter, MirrorWeightIsTheFiltersPercent) {
    json canary = gatewayCanary();
    canary["spec"]["analysis"]["mirror"] = true;
    canary["spec"]["analysis"]["mirrorWeight"] = 30;
    RouteContext ctx = contextOf(canary);
    GatewayApiRouter router;
    json route = router.build(ctx, Weights{100, 0, true})[0];
    EXPECT_EQ(route["spec"]["rules"][0]["filters"][0]["requestMirror"]["percent"], 30);
    EXPECT_EQ(router.readWeights(ctx, route), (Weights{100, 0, true}));
    // Once the mirroring stops the filter goes.
    route = router.build(ctx, Weights{0, 100})[0];
    EXPECT_FALSE(route["spec"]["rules"][0].contains("filters"));
}

TEST(GatewayApiRouter, AbTestingDuringTheAnalysisAndAfterThePromotion) {
    json canary = gatewayCanary({}, json::parse(R"([
      {"headers": {"user-agent": {"regex": ".*Firefox.*"}}},
      {"headers": {"x-canary": {"exact": "insider"}}}])"));
    canary["spec"]["analysis"].erase("stepWeights");
    canary["spec"]["analysis"]["iterations"] = 10;
    RouteContext ctx = contextOf(canary);
    ASSERT_TRUE(ctx.spec.abTesting());
    GatewayApiRouter router;
    // During the analysis (0/100): matched requests to the canary, the rest to the primary.
    json rules = router.build(ctx, Weights{0, 100})[0]["spec"]["rules"];
    ASSERT_EQ(rules.size(), 2u);
    EXPECT_EQ(rules[0]["matches"][0]["headers"][0]["value"], ".*Firefox.*");
    EXPECT_EQ(rules[0]["backendRefs"][1]["name"], "bifrost-api-canary");
    EXPECT_EQ(rules[0]["backendRefs"][1]["weight"], 100);
    EXPECT_EQ(rules[1]["backendRefs"].size(), 1u);
    // After promotion or rollback (100/0): nothing reaches the canary.
    rules = router.build(ctx, Weights{100, 0})[0]["spec"]["rules"];
    EXPECT_EQ(rules[0]["backendRefs"][0]["weight"], 100);
    EXPECT_EQ(rules[0]["backendRefs"][1]["weight"], 0);
    // sourceLabels have no HTTPRoute field: refused rather than dropped.
    EXPECT_THROW(router.checkSpec(contextOf(
                     gatewayCanary({}, json::parse(R"([{"sourceLabels": {"app": "tester"}}])")))),
                 RouterError);
}

TEST(GatewayApiRouter, Errors) {
    GatewayApiRouter router;
    json noRefs = exampleCanary("canary.yaml");
    EXPECT_THROW(router.checkSpec(contextOf(noRefs)), RouterError);
    EXPECT_THROW(router.build(contextOf(noRefs), Weights{}), RouterError);

    RouteContext ctx = contextOf(gatewayCanary());
    EXPECT_THROW(router.build(ctx, Weights{50, 60, false}), RouterError);
    EXPECT_THROW(router.build(ctx, Weights{-10, 110, false}), RouterError);

    // Selectors Gateway API cannot express.
    EXPECT_THROW(router.build(contextOf(gatewayCanary(
                                  {}, json::parse(R"([{"headers":{"x":{"prefix":"a"}}}])"))),
                              Weights{}),
                 RouterError);
    EXPECT_THROW(
        router.build(
            contextOf(gatewayCanary(json::parse(R"({"match":[{"method":{"regex":"GET|HEAD"}}]})"))),
            Weights{}),
        RouterError);
    // A prefix rewrite with two matches violates the CRD's CEL rule.
    EXPECT_THROW(router.build(contextOf(gatewayCanary(json::parse(R"({
                     "rewrite": {"uri": "/v2"},
                     "match": [{"uri": {"prefix": "/a"}}, {"uri": {"prefix": "/b"}}]})"))),
                              Weights{}),
                 RouterError);
    EXPECT_NO_THROW(router.build(contextOf(gatewayCanary(json::parse(R"({
                     "rewrite": {"uri": "/v2", "type": "ReplaceFullPath"},
                     "match": [{"uri": {"prefix": "/a"}}, {"uri": {"prefix": "/b"}}]})"))),
                                 Weights{}));
}

TEST(GatewayApiRouter, ReadWeightsFromLiveShapes) {
    RouteContext ctx = contextOf(gatewayCanary());
    GatewayApiRouter router;
    json live = router.build(ctx, Weights::forCanary(30))[0];
    // The CRD defaults a missing weight to 1.
    live["spec"]["rules"][0]["backendRefs"][0].erase("weight");
    EXPECT_EQ(router.readWeights(ctx, live), (Weights{1, 30, false}));
    live["spec"]["rules"][0]["backendRefs"].erase(1);
    EXPECT_THROW(router.readWeights(ctx, live), RouterError);
    EXPECT_THROW(router.readWeights(ctx, json::object()), RouterError);
}

// --- Istio ---------------------------------------------------------------------------------

TEST(IstioRouter, FlaggerShapeFromCanaryExample) {
    RouteContext ctx = contextOf(istioCanary());
    IstioRouter router;
    std::vector<kube::Object> objects = router.build(ctx, Weights::forCanary(10));
    ASSERT_EQ(objects.size(), 3u);
    EXPECT_EQ(objects[0], json::parse(R"({"apiVersion": "networking.istio.io/v1",
      "kind": "DestinationRule",
      "metadata": {"name": "campaign-service-primary", "namespace": "blessed-horizon"},
      "spec": {"host": "campaign-service-primary"}})"));
    EXPECT_EQ(objects[1]["spec"], json({{"host", "campaign-service-canary"}}));
    EXPECT_EQ(objects[2], json::parse(R"({
      "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
      "metadata": {"name": "campaign-service", "namespace": "blessed-horizon"},
      "spec": {
        "hosts": ["api.blessedhorizon.org", "campaign-service"],
        "gateways": ["public-gateway.istio-system.svc.cluster.local"],
        "http": [{"route": [
          {"destination": {"host": "campaign-service-primary"}, "weight": 90},
          {"destination": {"host": "campaign-service-canary"}, "weight": 10}]}]}})"));
    EXPECT_EQ(router.weightsObject(ctx), (ObjectRef{"networking.istio.io/v1", "VirtualService",
                                                    "blessed-horizon", "campaign-service"}));
    EXPECT_EQ(IstioRouter("networking.istio.io/v1beta1").build(ctx, Weights{})[2]["apiVersion"],
              "networking.istio.io/v1beta1");
}

TEST(IstioRouter, MeshDefaultsAndHosts) {
    json canary = exampleCanary("blue-green.yaml");
    json vs = only(IstioRouter().build(contextOf(canary), Weights{}), "VirtualService");
    EXPECT_EQ(vs["spec"]["gateways"], json({"mesh"}));
    EXPECT_EQ(vs["spec"]["hosts"], json({"ml-platform"}));

    canary["spec"]["service"]["hosts"] = {"ml-platform", "ml.example.com"};
    vs = only(IstioRouter().build(contextOf(canary), Weights{}), "VirtualService");
    EXPECT_EQ(vs["spec"]["hosts"], json({"ml-platform", "ml.example.com"})) << "not added twice";
    canary["spec"]["service"]["hosts"] = {"*"};
    vs = only(IstioRouter().build(contextOf(canary), Weights{}), "VirtualService");
    EXPECT_EQ(vs["spec"]["hosts"], json({"*"}));
}

TEST(IstioRouter, ServiceOptionsPassThrough) {
    json service = json::parse(R"({
      "match": [{"uri": {"prefix": "/api"}}],
      "rewrite": {"uri": "/", "authority": "backend.local"},
      "timeout": "15s",
      "retries": {"attempts": 3, "perTryTimeout": "5s", "retryOn": "gateway-error"},
      "headers": {"request": {"set": {"x-env": "prod"}}, "response": {"remove": ["server"]}},
      "corsPolicy": {"allowOrigins": [{"exact": "https://example.com"}], "maxAge": "24h"},
      "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
      "portDiscovery": true})");
    RouteContext ctx = contextOf(istioCanary(service));
    std::vector<kube::Object> objects = IstioRouter().build(ctx, Weights::forCanary(40));
    EXPECT_EQ(objects[0]["spec"]["trafficPolicy"], service["trafficPolicy"]);
    EXPECT_EQ(objects[1]["spec"]["trafficPolicy"], service["trafficPolicy"]);
    const json& http = objects[2]["spec"]["http"];
    ASSERT_EQ(http.size(), 1u);
    EXPECT_EQ(http[0]["match"], service["match"]);
    EXPECT_EQ(http[0]["rewrite"], service["rewrite"]);
    EXPECT_EQ(http[0]["timeout"], "15s");
    EXPECT_EQ(http[0]["retries"], service["retries"]);
    EXPECT_EQ(http[0]["headers"], service["headers"]);
    EXPECT_EQ(http[0]["corsPolicy"], service["corsPolicy"]);
    // portDiscovery behind an ingress gateway: destinations name the port.
    EXPECT_EQ(http[0]["route"][0]["destination"],
              json::parse(R"({"host": "campaign-service-primary", "port": {"number": 80}})"));
}

TEST(IstioRouter, AbTestingMergesAnalysisMatchIntoServiceMatch) {
    RouteContext ctx = contextOf(istioCanary(
        json::parse(R"({"match": [{"uri": {"prefix": "/api"}}, {"uri": {"prefix": "/v2"}}]})"),
        json::parse(R"({"match": [{"headers": {"x-canary": {"exact": "insider"}}},
                                  {"sourceLabels": {"app": "tester"}}]})")));
    IstioRouter router;
    json vs = only(router.build(ctx, Weights::forCanary(100)), "VirtualService");
    const json& http = vs["spec"]["http"];
    ASSERT_EQ(http.size(), 2u);
    EXPECT_EQ(http[0]["match"], json::parse(R"([
      {"uri": {"prefix": "/api"}, "headers": {"x-canary": {"exact": "insider"}}},
      {"uri": {"prefix": "/v2"}, "headers": {"x-canary": {"exact": "insider"}}},
      {"uri": {"prefix": "/api"}, "sourceLabels": {"app": "tester"}},
      {"uri": {"prefix": "/v2"}, "sourceLabels": {"app": "tester"}}])"));
    EXPECT_EQ(http[0]["route"][1]["weight"], 100);
    EXPECT_EQ(http[1]["match"], ctx.spec.service.match);
    EXPECT_EQ(http[1]["route"], json::parse(R"([
      {"destination": {"host": "campaign-service-primary"}, "weight": 100}])"));
    EXPECT_EQ(router.readWeights(ctx, vs), Weights::forCanary(100));

    // Without service matches the analysis matches are used as they are.
    RouteContext bare = contextOf(istioCanary(
        {}, json::parse(R"({"match": [{"headers": {"x-canary": {"exact": "insider"}}}]})")));
    vs = only(router.build(bare, Weights{}), "VirtualService");
    EXPECT_EQ(vs["spec"]["http"][0]["match"], bare.analysisMatch());
    EXPECT_FALSE(vs["spec"]["http"][1].contains("match"));
}

TEST(IstioRouter, MirrorWithPercentage) {
    RouteContext ctx = contextOf(istioCanary({}, {{"mirrorWeight", 25}}));
    IstioRouter router;
    json vs = only(router.build(ctx, Weights{100, 0, true}), "VirtualService");
    EXPECT_EQ(vs["spec"]["http"][0]["mirror"], json({{"host", "campaign-service-canary"}}));
    EXPECT_EQ(vs["spec"]["http"][0]["mirrorPercentage"], json({{"value", 25}}));
    EXPECT_EQ(router.readWeights(ctx, vs), (Weights{100, 0, true}));
    vs = only(router.build(ctx, Weights{}), "VirtualService");
    EXPECT_FALSE(vs["spec"]["http"][0].contains("mirror"));
}

TEST(IstioRouter, ReadWeightsFromLiveShapes) {
    RouteContext ctx = contextOf(istioCanary());
    IstioRouter router;
    json vs = json::parse(R"({"spec": {"http": [
      {"match": [{"uri": {"prefix": "/health"}}],
       "route": [{"destination": {"host": "other"}}]},
      {"route": [{"destination": {"host": "campaign-service-canary"}}]}]}})");
    // A lone destination without a weight receives everything.
    EXPECT_EQ(router.readWeights(ctx, vs), Weights::forCanary(100));
    vs["spec"]["http"][1]["route"].push_back(
        {{"destination", {{"host", "campaign-service-primary"}}}, {"weight", 70}});
    EXPECT_EQ(router.readWeights(ctx, vs), (Weights{70, 0, false}));
    vs["spec"]["http"][1]["route"][1]["weight"] = 0;
    EXPECT_THROW(router.readWeights(ctx, vs), RouterError) << "routes nothing";
    vs["spec"]["http"].erase(1);
    EXPECT_THROW(router.readWeights(ctx, vs), RouterError) << "no route to the canary";

    json tcp = istioCanary({{"appProtocol", "tcp"}});
    EXPECT_THROW(router.build(contextOf(tcp), Weights{}), RouterError);
}

// --- NGINX ---------------------------------------------------------------------------------

TEST(NginxRouter, CanaryIngressCopiesTheSourceAndSwitchesTheApexBackend) {
    RouteContext ctx = contextOf(nginxCanary());
    NginxRouter router;
    ASSERT_EQ(
        router.inputs(ctx),
        (std::vector<ObjectRef>{{"networking.k8s.io/v1", "Ingress", "blessed-horizon", "web"}}));
    std::vector<kube::Object> objects =
        router.build(ctx, Weights::forCanary(30), {sourceIngress()});
    ASSERT_EQ(objects.size(), 1u);
    json expected = json::parse(R"({
      "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
      "metadata": {"name": "web-canary", "namespace": "blessed-horizon",
        "labels": {"team": "growth"},
        "annotations": {"kubernetes.io/ingress.class": "nginx",
          "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
          "nginx.ingress.kubernetes.io/canary": "true",
          "nginx.ingress.kubernetes.io/canary-weight": "30"}}})");
    expected["spec"] = sourceIngress()["spec"];
    expected["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] =
        "campaign-service-canary";
    EXPECT_EQ(objects[0], expected);
    EXPECT_EQ(router.weightsObject(ctx),
              (ObjectRef{"networking.k8s.io/v1", "Ingress", "blessed-horizon", "web-canary"}));

    // At weight 0 the canary Ingress is switched off, as Flagger does.
    json off = router.build(ctx, Weights{}, {sourceIngress()})[0];
    EXPECT_EQ(off["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"], "false");
    EXPECT_EQ(off["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"], "0");

    // The default backend is switched too.
    json withDefault = sourceIngress();
    withDefault["spec"]["rules"] = json::array();
    withDefault["spec"]["defaultBackend"] = {
        {"service", {{"name", "campaign-service"}, {"port", {{"number", 80}}}}}};
    json fromDefault = router.build(ctx, Weights{}, {withDefault})[0];
    EXPECT_EQ(fromDefault["spec"]["defaultBackend"]["service"]["name"], "campaign-service-canary");
}

TEST(NginxRouter, AbTestingAnnotations) {
    RouteContext ctx = contextOf(nginxCanary(json::parse(R"([
      {"headers": {"x-canary": {"regex": "^insider$"}}},
      {"headers": {"cookie": {"exact": "canary"}}}])")));
    NginxRouter router;
    json ingress = router.build(ctx, Weights::forCanary(100), {sourceIngress()})[0];
    const json& annotations = ingress["metadata"]["annotations"];
    EXPECT_EQ(annotations["nginx.ingress.kubernetes.io/canary"], "true");
    EXPECT_EQ(annotations["nginx.ingress.kubernetes.io/canary-by-header"], "x-canary");
    EXPECT_EQ(annotations["nginx.ingress.kubernetes.io/canary-by-header-pattern"], "^insider$");
    EXPECT_EQ(annotations["nginx.ingress.kubernetes.io/canary-by-cookie"], "canary");
    EXPECT_FALSE(annotations.contains("nginx.ingress.kubernetes.io/canary-by-header-value"));
    EXPECT_FALSE(annotations.contains("nginx.ingress.kubernetes.io/canary-weight"));
    EXPECT_EQ(router.readWeights(ctx, ingress), Weights::forCanary(100));
    EXPECT_EQ(router.readWeights(ctx, router.build(ctx, Weights{}, {sourceIngress()})[0]),
              Weights{});
    EXPECT_THROW(router.build(ctx, Weights::forCanary(50), {sourceIngress()}), RouterError);

    RouteContext noHeaders = contextOf(nginxCanary(json::parse(R"([{"uri":{"prefix":"/"}}])")));
    EXPECT_THROW(router.checkSpec(noHeaders), RouterError);
}

TEST(NginxRouter, AbTestingExactHeaderAndWhatTheAnnotationsCannotSay) {
    NginxRouter router;
    RouteContext ctx =
        contextOf(nginxCanary(json::parse(R"([{"headers": {"x-canary": {"exact": "insider"}}}])")));
    json annotations =
        router.build(ctx, Weights{0, 100}, {sourceIngress()})[0]["metadata"]["annotations"];
    EXPECT_EQ(annotations["nginx.ingress.kubernetes.io/canary"], "true");
    EXPECT_EQ(annotations["nginx.ingress.kubernetes.io/canary-by-header"], "x-canary");
    EXPECT_EQ(annotations["nginx.ingress.kubernetes.io/canary-by-header-value"], "insider");
    // After promotion or rollback the canary Ingress is switched off.
    annotations =
        router.build(ctx, Weights{100, 0}, {sourceIngress()})[0]["metadata"]["annotations"];
    EXPECT_EQ(annotations["nginx.ingress.kubernetes.io/canary"], "false");

    for (
        const char* match : {
            R"([{"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}])",
            R"([{"sourceLabels": {"app": "tester"}, "headers": {"x": {"exact": "1"}}}])",
            R"([{"headers": {"x": {"exact": "1"}, "y": {"exact": "2"}}}])",
            R"([{"headers": {"x": {"prefix": "a"}}}])",
            R"([{"headers": {"cookie": {"exact": "a"}}}, {"headers": {"cookie": {"exact": "b"}}}])",
        }) {
        EXPECT_THROW(router.checkSpec(contextOf(nginxCanary(json::parse(match)))), RouterError)
            << match;
    }
}

TEST(Routers, MirrorIsRefusedWhereItCannotBeExpressed) {
    json nginx = nginxCanary();
    nginx["spec"]["analysis"]["mirror"] = true;
    EXPECT_THROW(NginxRouter().checkSpec(contextOf(nginx)), RouterError);
    json blueGreen = exampleCanary("blue-green.yaml");
    blueGreen["spec"]["provider"] = "kubernetes";
    KubernetesRouter kubernetes;
    EXPECT_NO_THROW(kubernetes.checkSpec(contextOf(blueGreen)));
    blueGreen["spec"]["analysis"]["mirror"] = true;
    EXPECT_THROW(kubernetes.checkSpec(contextOf(blueGreen)), RouterError);

    // Every router but Istio's and Gateway API's refuses analysis.mirror in checkSpec, before
    // anything is routed, whatever else its spec lacks.
    for (const ProviderEntry& entry : providerTable()) {
        if (!entry.makeRouter || entry.name == "istio" || entry.name.rfind("gatewayapi", 0) == 0)
            continue;
        auto router = entry.makeRouter(entry.name);
        json canary = exampleCanary("blue-green.yaml");
        canary["spec"]["provider"] = std::string(entry.name);
        canary["spec"]["analysis"]["mirror"] = true;
        try {
            router->checkSpec(contextOf(canary));
            ADD_FAILURE() << entry.name << " accepted analysis.mirror";
        } catch (const RouterError& e) {
            EXPECT_NE(std::string(e.what()).find("cannot mirror"), std::string::npos)
                << entry.name << ": " << e.what();
        }
    }
}

// Session affinity (Flagger's analysis.sessionAffinity): the cookies come from the Canary
// status, filled in by the controller.
RouteContext stickyContext(json canary, canaryengine::SessionAffinityCookies cookies,
                           json affinity = {{"cookieName", "flagger-cookie"}}) {
    canary["spec"]["analysis"]["sessionAffinity"] = std::move(affinity);
    RouteContext ctx = contextOf(std::move(canary));
    ctx.spec.analysis.sessionAffinity->cookies = std::move(cookies);
    return ctx;
}

TEST(SessionAffinity, SpecDefaultsAndErrors) {
    json canary = istioCanary();
    canary["spec"]["analysis"]["sessionAffinity"] = {{"cookieName", "flagger-cookie"}};
    RouteContext ctx = contextOf(canary);
    ASSERT_TRUE(ctx.spec.analysis.sessionAffinity);
    EXPECT_EQ(ctx.spec.analysis.sessionAffinity->maxAge, 86400);  // Flagger's default
    EXPECT_EQ(ctx.spec.analysis.sessionAffinity->primaryCookieName, "");
    canary["spec"]["analysis"]["sessionAffinity"] = {
        {"cookieName", "c"}, {"maxAge", 300}, {"primaryCookieName", "p"}};
    ctx = contextOf(canary);
    EXPECT_EQ(ctx.spec.analysis.sessionAffinity->maxAge, 300);
    EXPECT_EQ(ctx.spec.analysis.sessionAffinity->primaryCookieName, "p");
    EXPECT_FALSE(contextOf(istioCanary()).spec.analysis.sessionAffinity);
    for (json bad : {json::object(), json{{"cookieName", ""}}, json{{"cookieName", "a b"}},
                     json{{"cookieName", "a;b"}}, json{{"cookieName", "c"}, {"maxAge", -1}},
                     json{{"cookieName", "c"}, {"primaryCookieName", "c"}}}) {
        canary["spec"]["analysis"]["sessionAffinity"] = bad;
        EXPECT_THROW(contextOf(canary), RouterError) << bad;
    }
}

TEST(SessionAffinity, CookiesMoveAsFlaggersRoutersMoveThem) {
    canaryengine::SessionAffinitySpec affinity;
    affinity.cookieName = "c";
    int n = 0;
    auto random = [&] { return "v" + std::to_string(++n); };
    // The first weight on the canary makes the canary cookie; it is kept while it gets traffic.
    affinity.cookies = canaryengine::nextSessionAffinityCookies(affinity, 10, random);
    EXPECT_EQ(affinity.cookies, (canaryengine::SessionAffinityCookies{"c=v1", "", ""}));
    affinity.cookies = canaryengine::nextSessionAffinityCookies(affinity, 20, random);
    EXPECT_EQ(affinity.cookies, (canaryengine::SessionAffinityCookies{"c=v1", "", ""}));
    // Back at 0 (promotion or rollback) it becomes the previous cookie.
    affinity.cookies = canaryengine::nextSessionAffinityCookies(affinity, 0, random);
    EXPECT_EQ(affinity.cookies, (canaryengine::SessionAffinityCookies{"", "c=v1", ""}));
    affinity.cookies = canaryengine::nextSessionAffinityCookies(affinity, 0, random);
    EXPECT_EQ(affinity.cookies, (canaryengine::SessionAffinityCookies{"", "c=v1", ""}));
    // The next analysis gets a new one; the primary cookie is new at every weight (Flagger).
    affinity.primaryCookieName = "p";
    affinity.cookies = canaryengine::nextSessionAffinityCookies(affinity, 10, random);
    EXPECT_EQ(affinity.cookies, (canaryengine::SessionAffinityCookies{"c=v2", "c=v1", "p=v3"}));
    affinity.cookies = canaryengine::nextSessionAffinityCookies(affinity, 30, random);
    EXPECT_EQ(affinity.cookies, (canaryengine::SessionAffinityCookies{"c=v2", "c=v1", "p=v4"}));
    affinity.cookies = canaryengine::nextSessionAffinityCookies(affinity, 0, random);
    EXPECT_EQ(affinity.cookies, (canaryengine::SessionAffinityCookies{"", "c=v2", ""}));
    const std::string value = canaryengine::randomCookieValue();
    EXPECT_EQ(value.size(), 10u);
    EXPECT_TRUE(std::all_of(value.begin(), value.end(),
                            [](char ch) { return std::isalpha(static_cast<unsigned char>(ch)); }));
}

TEST(IstioRouter, SessionAffinityStickyRouteDuringTheAnalysis) {
    RouteContext ctx = stickyContext(istioCanary(), {"flagger-cookie=abcdefghij", "", ""},
                                     {{"cookieName", "flagger-cookie"}, {"maxAge", 600}});
    IstioRouter router;
    json vs = router.build(ctx, Weights::forCanary(10))[2];
    EXPECT_EQ(vs["spec"]["http"], json::parse(R"([
      {"name": "sticky-route",
       "match": [{"headers": {"cookie": {"regex": ".*flagger-cookie=abcdefghij.*"}}}],
       "route": [{"destination": {"host": "campaign-service-primary"}, "weight": 0},
                 {"destination": {"host": "campaign-service-canary"}, "weight": 100}]},
      {"route": [{"destination": {"host": "campaign-service-primary"}, "weight": 90},
                 {"destination": {"host": "campaign-service-canary"}, "weight": 10,
                  "headers": {"response": {"add": {
                    "Set-Cookie": "flagger-cookie=abcdefghij; Max-Age=600"}}}}]}])"));
    // The sticky route is not the split.
    EXPECT_EQ(router.readWeights(ctx, vs), Weights::forCanary(10));
    // Without a cookie (none made yet) nothing is sticky.
    ctx.spec.analysis.sessionAffinity->cookies = {};
    vs = router.build(ctx, Weights::forCanary(10))[2];
    EXPECT_EQ(vs["spec"]["http"].size(), 1u);
}

TEST(IstioRouter, SessionAffinityPrimaryCookieAndServiceMatch) {
    RouteContext ctx = stickyContext(
        istioCanary({{"match", json::parse(R"([{"uri": {"prefix": "/api"}}])")},
                     {"headers", json::parse(R"({"response": {"add": {"x-a": "b"}}})")}}),
        {"c=AAAA", "", "p.x=BBBB"}, {{"cookieName", "c"}, {"primaryCookieName", "p.x"}});
    IstioRouter router;
    json http = router.build(ctx, Weights::forCanary(30))[2]["spec"]["http"];
    ASSERT_EQ(http.size(), 3u);
    EXPECT_EQ(http[0]["name"], "sticky-route");
    EXPECT_EQ(http[0]["match"], json::parse(R"([{"uri": {"prefix": "/api"},
      "headers": {"cookie": {"regex": ".*c=AAAA.*"}}}])"));
    EXPECT_EQ(http[1]["name"], "sticky-primary-route");
    EXPECT_EQ(http[1]["match"], json::parse(R"([{"uri": {"prefix": "/api"},
      "headers": {"cookie": {"regex": ".*p\\.x=BBBB.*"}}}])"));
    EXPECT_EQ(http[1]["route"][0]["weight"], 100);
    EXPECT_EQ(http[1]["route"][1]["weight"], 0);
    // The route's own headers stay; the primary's responses set the primary cookie for one
    // analysis interval (1m).
    EXPECT_EQ(http[2]["headers"], json::parse(R"({"response": {"add": {"x-a": "b"}}})"));
    EXPECT_EQ(http[2]["route"][0]["headers"]["response"]["add"]["Set-Cookie"],
              "p.x=BBBB; Max-Age=60");
    EXPECT_EQ(http[2]["route"][1]["headers"]["response"]["add"]["Set-Cookie"],
              "c=AAAA; Max-Age=86400");
    EXPECT_EQ(router.readWeights(ctx, router.build(ctx, Weights::forCanary(30))[2]),
              Weights::forCanary(30));
}

TEST(IstioRouter, SessionAffinityExpiresThePreviousCookieAfterTheAnalysis) {
    RouteContext ctx = stickyContext(istioCanary(), {"", "flagger-cookie=abcdefghij", ""});
    IstioRouter router;
    json vs = router.build(ctx, Weights{})[2];
    EXPECT_EQ(vs["spec"]["http"], json::parse(R"([
      {"name": "sticky-route",
       "match": [{"headers": {"cookie": {"regex": ".*flagger-cookie=abcdefghij.*"}}}],
       "headers": {"response": {"add": {
         "Set-Cookie": "flagger-cookie=abcdefghij; Max-Age=-1"}}},
       "route": [{"destination": {"host": "campaign-service-primary"}, "weight": 100},
                 {"destination": {"host": "campaign-service-canary"}, "weight": 0}]},
      {"route": [{"destination": {"host": "campaign-service-primary"}, "weight": 100},
                 {"destination": {"host": "campaign-service-canary"}, "weight": 0}]}])"));
    EXPECT_EQ(router.readWeights(ctx, vs), Weights{});
}

TEST(GatewayApiRouter, SessionAffinityStickyRulesDuringTheAnalysis) {
    RouteContext ctx = stickyContext(gatewayCanary(), {"flagger-cookie=abcdefghij", "", ""});
    GatewayApiRouter router;
    json route = router.build(ctx, Weights::forCanary(10))[0];
    EXPECT_EQ(route["spec"]["rules"], json::parse(R"([
      {"matches": [{"path": {"type": "PathPrefix", "value": "/"},
                    "headers": [{"type": "RegularExpression", "name": "Cookie",
                                 "value": ".*flagger-cookie=abcdefghij.*"}]}],
       "backendRefs": [
         {"group": "", "kind": "Service", "name": "bifrost-api-primary", "port": 8080,
          "weight": 0},
         {"group": "", "kind": "Service", "name": "bifrost-api-canary", "port": 8080,
          "weight": 100}]},
      {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
       "backendRefs": [
         {"group": "", "kind": "Service", "name": "bifrost-api-primary", "port": 8080,
          "weight": 90},
         {"group": "", "kind": "Service", "name": "bifrost-api-canary", "port": 8080,
          "weight": 10,
          "filters": [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [
            {"name": "Set-Cookie", "value": "flagger-cookie=abcdefghij; Max-Age=86400"}]}}]}]}
    ])"));
    EXPECT_EQ(router.readWeights(ctx, route), Weights::forCanary(10));

    // With primaryCookieName a third rule keeps the primary's users on the primary.
    ctx = stickyContext(gatewayCanary(), {"c=AAAA", "", "p=BBBB"},
                        {{"cookieName", "c"}, {"primaryCookieName", "p"}});
    route = router.build(ctx, Weights::forCanary(40))[0];
    const json& rules = route["spec"]["rules"];
    ASSERT_EQ(rules.size(), 3u);
    EXPECT_EQ(rules[1]["matches"][0]["headers"][0]["value"], ".*p=BBBB.*");
    EXPECT_EQ(rules[1]["backendRefs"][0]["weight"], 100);
    EXPECT_EQ(rules[1]["backendRefs"][1]["weight"], 0);
    EXPECT_EQ(rules[2]["backendRefs"][0]["filters"][0]["responseHeaderModifier"]["add"][0]["value"],
              "p=BBBB; Max-Age=60");
    EXPECT_EQ(router.readWeights(ctx, route), Weights::forCanary(40));
}

TEST(GatewayApiRouter, SessionAffinityExpiresThePreviousCookieAfterTheAnalysis) {
    // The service's response headers and the Set-Cookie share one ResponseHeaderModifier (the
    // CRD allows one per rule).
    RouteContext ctx = stickyContext(
        gatewayCanary({{"headers", json::parse(R"({"response": {"add": {"x-a": "b"}}})")}}),
        {"", "flagger-cookie=abcdefghij", ""});
    GatewayApiRouter router;
    json route = router.build(ctx, Weights{})[0];
    const json& rules = route["spec"]["rules"];
    ASSERT_EQ(rules.size(), 2u);
    EXPECT_EQ(rules[0]["matches"][0]["headers"][0]["value"], ".*flagger-cookie=abcdefghij.*");
    EXPECT_EQ(rules[0]["filters"], json::parse(R"([{"type": "ResponseHeaderModifier",
      "responseHeaderModifier": {"add": [{"name": "x-a", "value": "b"},
        {"name": "Set-Cookie", "value": "flagger-cookie=abcdefghij; Max-Age=-1"}]}}])"));
    EXPECT_EQ(rules[1]["filters"], json::parse(R"([{"type": "ResponseHeaderModifier",
      "responseHeaderModifier": {"add": [{"name": "x-a", "value": "b"}]}}])"));
    EXPECT_EQ(rules[0]["backendRefs"][0]["weight"], 100);
    EXPECT_EQ(router.readWeights(ctx, route), Weights{});
    // Without a previous cookie there is only the weighted rule.
    ctx.spec.analysis.sessionAffinity->cookies = {};
    EXPECT_EQ(router.build(ctx, Weights{})[0]["spec"]["rules"].size(), 1u);
}

TEST(Routers, SessionAffinityDoesNotCombineWithAbTesting) {
    json ab = gatewayCanary({}, json::parse(R"([{"headers": {"x-canary": {"exact": "1"}}}])"));
    ab["spec"]["analysis"].erase("stepWeights");
    ab["spec"]["analysis"]["iterations"] = 10;
    ab["spec"]["analysis"]["sessionAffinity"] = {{"cookieName", "c"}};
    try {
        GatewayApiRouter().checkSpec(contextOf(ab));
        ADD_FAILURE() << "A/B testing with session affinity accepted";
    } catch (const RouterError& e) {
        EXPECT_NE(std::string(e.what()).find("analysis.sessionAffinity"), std::string::npos);
    }
    ab["spec"]["provider"] = "istio";
    EXPECT_THROW(IstioRouter().checkSpec(contextOf(ab)), RouterError);
}

TEST(NginxRouter, Errors) {
    NginxRouter router;
    json noRef = nginxCanary();
    noRef["spec"].erase("ingressRef");
    EXPECT_THROW(router.checkSpec(contextOf(noRef)), RouterError);

    RouteContext ctx = contextOf(nginxCanary());
    EXPECT_THROW(router.build(ctx, Weights{}, {}), RouterError) << "no source Ingress";
    json elsewhere = sourceIngress();
    elsewhere["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "other";
    EXPECT_THROW(router.build(ctx, Weights{}, {elsewhere}), RouterError) << "no apex backend";
    json beta = sourceIngress();
    beta["apiVersion"] = "networking.k8s.io/v1beta1";
    EXPECT_THROW(router.build(ctx, Weights{}, {beta}), RouterError);
    EXPECT_THROW(router.build(ctx, Weights{100, 0, true}, {sourceIngress()}), RouterError)
        << "nginx cannot mirror";

    json live = router.build(ctx, Weights::forCanary(10), {sourceIngress()})[0];
    for (const char* bad : {"ten", "", "101", "-1", "10%"}) {
        live["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] = bad;
        EXPECT_THROW(router.readWeights(ctx, live), RouterError) << bad;
    }
}

// --- Kubernetes ----------------------------------------------------------------------------

TEST(KubernetesRouter, SwitchesTheApexSelector) {
    RouteContext ctx = contextOf(exampleCanary("blue-green.yaml"));
    KubernetesRouter router;
    EXPECT_TRUE(router.routesApexService());
    json toPrimary = router.build(ctx, Weights{})[0];
    EXPECT_EQ(toPrimary, buildService(ctx, ServiceRole::Apex));
    json toCanary = router.build(ctx, Weights::forCanary(100))[0];
    EXPECT_EQ(toCanary["spec"]["selector"], json({{"app", "ml-platform"}}));
    EXPECT_EQ(router.readWeights(ctx, toPrimary), Weights{});
    EXPECT_EQ(router.readWeights(ctx, toCanary), Weights::forCanary(100));
    EXPECT_EQ(router.weightsObject(ctx), (ObjectRef{"v1", "Service", "production", "ml-platform"}));

    EXPECT_THROW(router.build(ctx, Weights::forCanary(50)), RouterError);
    EXPECT_THROW(router.build(ctx, Weights{100, 0, true}), RouterError);
    toCanary["spec"]["selector"]["app"] = "ml-platform-canary";
    EXPECT_THROW(router.readWeights(ctx, toCanary), RouterError);

    // Progressive canaries need weights, A/B testing needs header matches: not this provider.
    EXPECT_THROW(router.checkSpec(contextOf(exampleCanary("canary.yaml"))), RouterError);
    json abTest = exampleCanary("blue-green.yaml");
    abTest["spec"]["analysis"]["match"] = json::parse(R"([{"headers":{"x":{"exact":"1"}}}])");
    EXPECT_THROW(router.checkSpec(contextOf(abTest)), RouterError);
    // Promotion without analysis only switches at once.
    json skip = exampleCanary("blue-green.yaml");
    skip["spec"]["skipAnalysis"] = true;
    skip["spec"].erase("analysis");
    EXPECT_NO_THROW(router.checkSpec(contextOf(skip)));
}

// --- all routers ---------------------------------------------------------------------------

struct RouterCase {
    std::string provider;
    json canary;
    bool mirrors;
    bool splits;  // can express weights other than 0 and 100
};

std::vector<RouterCase> routerCases() {
    return {{"gatewayapi:v1", gatewayCanary(), true, true},
            {"gatewayapi:v1beta1", gatewayCanary(), true, true},
            {"istio", istioCanary(), true, true},
            {"nginx", nginxCanary(), false, true},
            {"kubernetes", exampleCanary("blue-green.yaml"), false, false}};
}

TEST(Routers, WeightsRoundTrip) {
    for (const RouterCase& c : routerCases()) {
        SCOPED_TRACE(c.provider);
        std::unique_ptr<Router> router = makeRouter(c.provider);
        EXPECT_EQ(router->provider(), c.provider);
        RouteContext ctx = contextOf(c.canary);
        router->checkSpec(ctx);
        std::vector<kube::Object> inputs;
        if (!router->inputs(ctx).empty()) inputs.push_back(sourceIngress());
        for (int canaryWeight : {0, 5, 10, 33, 50, 90, 100}) {
            for (bool mirror : {false, true}) {
                Weights weights = Weights::forCanary(canaryWeight, mirror);
                bool expressible = (c.splits || canaryWeight % 100 == 0) && (c.mirrors || !mirror);
                if (!expressible) {
                    EXPECT_THROW(router->build(ctx, weights, inputs), RouterError)
                        << toString(weights);
                    continue;
                }
                std::vector<kube::Object> objects = router->build(ctx, weights, inputs);
                ObjectRef ref = router->weightsObject(ctx);
                int matches = 0;
                for (const json& object : objects) {
                    EXPECT_EQ(object["metadata"]["namespace"], ctx.namespaceName);
                    if (object["kind"] != ref.kind || object["metadata"]["name"] != ref.name) {
                        continue;
                    }
                    ++matches;
                    EXPECT_EQ(object["apiVersion"], ref.apiVersion);
                    EXPECT_EQ(router->readWeights(ctx, object), weights) << toString(weights);
                }
                EXPECT_EQ(matches, 1) << "exactly one weights object";
            }
        }
    }
}

TEST(Routers, DesiredObjectsCarryServicesOnce) {
    for (const RouterCase& c : routerCases()) {
        SCOPED_TRACE(c.provider);
        std::unique_ptr<Router> router = makeRouter(c.provider);
        RouteContext ctx = contextOf(c.canary);
        std::vector<kube::Object> inputs;
        if (!router->inputs(ctx).empty()) inputs.push_back(sourceIngress());
        std::vector<kube::Object> objects =
            desiredObjects(*router, ctx, Weights::forCanary(0), inputs);
        std::vector<std::string> services;
        for (const json& object : objects) {
            if (object["kind"] == "Service") services.push_back(object["metadata"]["name"]);
        }
        std::sort(services.begin(), services.end());
        const std::string apex = ctx.apexServiceName();
        EXPECT_EQ(services, (std::vector<std::string>{apex, apex + "-canary", apex + "-primary"}));
        // Services come before the objects that route to them.
        EXPECT_EQ(objects[0]["kind"], "Service");
        EXPECT_EQ(objects[1]["kind"], "Service");
    }
    RouteContext blueGreen = contextOf(exampleCanary("blue-green.yaml"));
    std::vector<kube::Object> switched =
        desiredObjects(KubernetesRouter(), blueGreen, Weights::forCanary(100));
    ASSERT_EQ(switched.size(), 3u);
    EXPECT_EQ(switched[2]["spec"]["selector"]["app"], "ml-platform") << "the router's apex";
}

TEST(Routers, Factory) {
    EXPECT_EQ(makeRouter("gatewayapi")->provider(), "gatewayapi:v1");
    EXPECT_EQ(makeRouter("istio")->provider(), "istio");
    EXPECT_THROW(makeRouter("osm"), RouterError);
    EXPECT_THROW(makeRouter(""), RouterError);
    canaryengine::CanarySpec spec;
    EXPECT_EQ(providerOf(spec, "kubernetes"), "kubernetes");
    spec.provider = "nginx";
    EXPECT_EQ(providerOf(spec, "kubernetes"), "nginx");
}

TEST(Routers, PercentagesAreChecked) {
    EXPECT_NO_THROW(checkPercentages(Weights{}));
    EXPECT_NO_THROW(checkPercentages(Weights{0, 100, true}));
    EXPECT_THROW(checkPercentages(Weights{90, 20, false}), RouterError);
    EXPECT_THROW(checkPercentages(Weights{101, -1, false}), RouterError);
    EXPECT_EQ(toString(Weights{90, 10, true}), "primary=90 canary=10 mirror");
}

// --- ownership -----------------------------------------------------------------------------

TEST(RouterOwnership, ControllerOwnerReferenceToTheCanary) {
    RouteContext ctx = contextOf(exampleCanary("canary.yaml"), "c-uid");
    json owned = withOwner(buildService(ctx, ServiceRole::Apex), ctx);
    EXPECT_EQ(owned["metadata"]["ownerReferences"], json::parse(R"([{
      "apiVersion": "sluice.io/v1alpha1", "kind": "Canary", "name": "campaign-service",
      "uid": "c-uid", "controller": true, "blockOwnerDeletion": true}])"));

    // Another owner stays; an older reference to the same Canary is replaced, not duplicated.
    json object = buildService(ctx, ServiceRole::Apex);
    object["metadata"]["namespace"] = "elsewhere";
    object["metadata"]["ownerReferences"] = json::parse(R"([
      {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "other"},
      {"apiVersion": "sluice.io/v1alpha1", "kind": "Canary", "name": "old", "uid": "c-uid"}])");
    owned = withOwner(object, ctx);
    EXPECT_EQ(owned["metadata"]["namespace"], "blessed-horizon");
    ASSERT_EQ(owned["metadata"]["ownerReferences"].size(), 2u);
    EXPECT_EQ(owned["metadata"]["ownerReferences"][0]["uid"], "other");
    EXPECT_EQ(owned["metadata"]["ownerReferences"][1]["name"], "campaign-service");

    ctx.canaryUid.clear();
    EXPECT_THROW(withOwner(buildService(ctx, ServiceRole::Apex), ctx), RouterError);
}

}  // namespace
}  // namespace sluice::router
