// Unit tests of the mesh and ingress routers added with the provider table (SMI/Linkerd,
// Contour, Traefik): Flagger's object shapes, the weights read back, what each refuses.
#include <gtest/gtest.h>

#include "router_test_util.h"
#include "sluice/router/providers.h"
#include "sluice/router/router.h"

namespace sluice::router {
namespace {

using nlohmann::json;
using testutil::contextOf;
using testutil::exampleCanary;

json canaryFor(const std::string& provider, const std::string& example = "canary.yaml") {
    json canary = exampleCanary(example);
    canary["spec"]["provider"] = provider;
    return canary;
}

// --- SMI / Linkerd ---------------------------------------------------------------------------

TEST(SmiRouter, LinkerdTrafficSplitAsFlagger) {
    RouteContext ctx = contextOf(canaryFor("linkerd"));
    std::unique_ptr<Router> router = makeRouter("linkerd");
    std::vector<kube::Object> objects = router->build(ctx, Weights::forCanary(10));
    ASSERT_EQ(objects.size(), 1u);
    // As Flagger, the root service is the first of service.hosts when there are any.
    EXPECT_EQ(objects[0], json::parse(R"({
      "apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
      "metadata": {"name": "campaign-service", "namespace": "blessed-horizon"},
      "spec": {"service": "api.blessedhorizon.org",
               "backends": [{"service": "campaign-service-canary", "weight": 10},
                            {"service": "campaign-service-primary", "weight": 90}]}})"));
    EXPECT_EQ(router->weightsObject(ctx).apiVersion, "split.smi-spec.io/v1alpha1");
    EXPECT_EQ(router->readWeights(ctx, objects[0]), Weights::forCanary(10));
    json noHosts = canaryFor("linkerd");
    noHosts["spec"]["service"].erase("hosts");
    EXPECT_EQ(router->build(contextOf(noHosts), Weights{})[0]["spec"]["service"],
              "campaign-service");
}

TEST(SmiRouter, VersionsHostsAndIstioGateways) {
    json canary = canaryFor("smi:v1alpha2:istio");
    canary["spec"]["service"]["hosts"] = {"campaign.example.com", "other.example.com"};
    canary["spec"]["service"]["gateways"] = {"public-gateway.istio-system.svc.cluster.local"};
    RouteContext ctx = contextOf(canary);
    std::unique_ptr<Router> router = makeRouter("smi:v1alpha2:istio");
    EXPECT_EQ(router->provider(), "smi:v1alpha2");
    json split = router->build(ctx, Weights{})[0];
    EXPECT_EQ(split["apiVersion"], "split.smi-spec.io/v1alpha2");
    EXPECT_EQ(split["spec"]["service"], "campaign.example.com") << "the first host is the root";
    EXPECT_EQ(split["metadata"]["annotations"],
              json({{"VirtualService.v1alpha3.networking.istio.io/spec.gateways",
                     R"(["public-gateway.istio-system.svc.cluster.local"])"}}));
    // The gateways annotation is only for Istio.
    EXPECT_FALSE(makeRouter("smi")->build(ctx, Weights{})[0]["metadata"].contains("annotations"));
    EXPECT_EQ(makeRouter("smi")->provider(), "smi:v1alpha2");
    EXPECT_EQ(makeRouter("smi:v1alpha1:linkerd")->weightsObject(ctx).apiVersion,
              "split.smi-spec.io/v1alpha1");
}

TEST(SmiRouter, ReadsQuantitiesAndRefusesWhatItCannotRoute) {
    RouteContext ctx = contextOf(canaryFor("linkerd"));
    std::unique_ptr<Router> router = makeRouter("linkerd");
    json split = router->build(ctx, Weights{})[0];
    // Flagger writes resource.Quantity strings into v1alpha1; kubectl users may write milli.
    split["spec"]["backends"][0]["weight"] = "25";
    split["spec"]["backends"][1]["weight"] = "75000m";
    EXPECT_EQ(router->readWeights(ctx, split), Weights::forCanary(25));
    split["spec"]["backends"].erase(0);
    EXPECT_THROW(router->readWeights(ctx, split), RouterError);
    EXPECT_THROW(router->build(ctx, Weights::forCanary(10, true)), RouterError) << "mirror";

    json ab = canaryFor("linkerd");
    ab["spec"]["analysis"]["match"] = json::parse(R"([{"headers": {"x": {"exact": "1"}}}])");
    EXPECT_THROW(router->build(contextOf(ab), Weights{}), RouterError);
}

// --- Contour ---------------------------------------------------------------------------------

TEST(ContourRouter, HttpProxyAsFlagger) {
    json canary = canaryFor("contour");
    canary["spec"]["service"]["timeout"] = "15s";
    canary["spec"]["service"]["retries"] = {{"attempts", 3}, {"perTryTimeout", "5s"}};
    canary["spec"]["service"]["match"] = json::parse(R"([{"uri": {"prefix": "/api"}}])");
    RouteContext ctx = contextOf(canary);
    std::unique_ptr<Router> router = makeRouter("contour");
    std::vector<kube::Object> objects = router->build(ctx, Weights::forCanary(30));
    ASSERT_EQ(objects.size(), 1u);
    auto service = [](const std::string& name, int weight) {
        return json{{"name", name},
                    {"port", 80},
                    {"weight", weight},
                    {"requestHeadersPolicy",
                     {{"set",
                       {{{"name", "l5d-dst-override"},
                         {"value", name + ".blessed-horizon.svc.cluster.local:80"}}}}}}};
    };
    EXPECT_EQ(objects[0],
              (json{{"apiVersion", "projectcontour.io/v1"},
                    {"kind", "HTTPProxy"},
                    {"metadata", {{"name", "campaign-service"}, {"namespace", "blessed-horizon"}}},
                    {"spec",
                     {{"routes",
                       {{{"conditions", {{{"prefix", "/api"}}}},
                         {"services",
                          {service("campaign-service-primary", 70),
                           service("campaign-service-canary", 30)}},
                         {"timeoutPolicy", {{"response", "15s"}, {"idle", "5m"}}},
                         {"retryPolicy", {{"count", 3}, {"perTryTimeout", "5s"}}}}}}}}}));
    EXPECT_EQ(router->readWeights(ctx, objects[0]), Weights::forCanary(30));
    EXPECT_THROW(router->build(ctx, Weights::forCanary(30, true)), RouterError) << "mirror";
}

TEST(ContourRouter, AbTestingRoutesPerMatchThenPrimary) {
    json canary = canaryFor("contour");
    canary["spec"]["analysis"]["match"] = json::parse(R"([
      {"headers": {"x-canary": {"exact": "insider"}, "x-region": {"prefix": "eu"}}},
      {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}])");
    RouteContext ctx = contextOf(canary);
    std::unique_ptr<Router> router = makeRouter("contour");
    json proxy = router->build(ctx, Weights::forCanary(100))[0];
    const json& routes = proxy["spec"]["routes"];
    ASSERT_EQ(routes.size(), 3u);
    EXPECT_EQ(routes[0]["conditions"], json::parse(R"([{"prefix": "/"},
      {"header": {"name": "x-canary", "exact": "insider"}},
      {"header": {"name": "x-region", "contains": "eu"}}])"));
    EXPECT_EQ(routes[1]["conditions"][1]["header"]["regex"], "^(.*?;)?(canary=always)(;.*)?$");
    EXPECT_EQ(routes[1]["services"][1]["weight"], 100);
    EXPECT_EQ(routes[2]["conditions"], json::parse(R"([{"prefix": "/"}])"));
    EXPECT_EQ(routes[2]["services"][0]["weight"], 100) << "everyone else: the primary";
    EXPECT_EQ(routes[2]["services"][1]["weight"], 0);
    EXPECT_EQ(router->readWeights(ctx, proxy), Weights::forCanary(100));

    json byUri = canaryFor("contour");
    byUri["spec"]["analysis"]["match"] = json::parse(R"([{"uri": {"prefix": "/beta"}}])");
    EXPECT_THROW(router->checkSpec(contextOf(byUri)), RouterError);
}

// --- Traefik ---------------------------------------------------------------------------------

TEST(TraefikRouter, TraefikServiceAsFlagger) {
    json canary = canaryFor("traefik");
    canary["spec"]["service"]["apex"] = {{"labels", {{"tier", "edge"}}}};
    RouteContext ctx = contextOf(canary);
    std::unique_ptr<Router> router = makeRouter("traefik");
    json initial = router->build(ctx, Weights{})[0];
    EXPECT_EQ(initial, json::parse(R"({
      "apiVersion": "traefik.io/v1alpha1", "kind": "TraefikService",
      "metadata": {"name": "campaign-service", "namespace": "blessed-horizon",
                   "labels": {"tier": "edge"}},
      "spec": {"weighted": {"services": [
        {"name": "campaign-service-primary", "namespace": "blessed-horizon", "port": 80,
         "weight": 100}]}}})"))
        << "no canary backend without canary traffic";
    EXPECT_EQ(router->readWeights(ctx, initial), Weights{});
    json split = router->build(ctx, Weights::forCanary(40))[0];
    ASSERT_EQ(split["spec"]["weighted"]["services"].size(), 2u);
    EXPECT_EQ(split["spec"]["weighted"]["services"][1]["name"], "campaign-service-canary");
    EXPECT_EQ(router->readWeights(ctx, split), Weights::forCanary(40));
    split["spec"]["weighted"]["services"].erase(0);
    EXPECT_THROW(router->readWeights(ctx, split), RouterError);

    json ab = canaryFor("traefik");
    ab["spec"]["analysis"]["match"] = json::parse(R"([{"headers": {"x": {"exact": "1"}}}])");
    EXPECT_THROW(router->build(contextOf(ab), Weights{}), RouterError);
}

// --- Gloo ------------------------------------------------------------------------------------

TEST(GlooRouter, UpstreamsAndRouteTableAsFlagger) {
    RouteContext ctx = contextOf(canaryFor("gloo"));
    std::unique_ptr<Router> router = makeRouter("gloo");
    std::vector<kube::Object> objects = router->build(ctx, Weights::forCanary(15));
    ASSERT_EQ(objects.size(), 3u);
    EXPECT_EQ(objects[0], json::parse(R"({
      "apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
      "metadata": {"name": "blessed-horizon-campaign-service-primaryupstream-80",
                   "namespace": "blessed-horizon"},
      "spec": {"kube": {"serviceName": "campaign-service-primary",
                        "serviceNamespace": "blessed-horizon", "servicePort": 80,
                        "selector": {"app": "campaign-service-primary"}}}})"));
    EXPECT_EQ(objects[1]["spec"]["kube"]["serviceName"], "campaign-service-canary");
    EXPECT_EQ(objects[1]["spec"]["kube"]["selector"], json({{"app", "campaign-service"}}));
    EXPECT_EQ(objects[2], json::parse(R"({
      "apiVersion": "gateway.solo.io/v1", "kind": "RouteTable",
      "metadata": {"name": "campaign-service", "namespace": "blessed-horizon"},
      "spec": {"routes": [{"inheritablePathMatchers": true, "routeAction": {"multi": {
        "destinations": [
          {"destination": {"upstream": {"name": "blessed-horizon-campaign-service-primaryupstream-80",
                                        "namespace": "blessed-horizon"}}, "weight": 85},
          {"destination": {"upstream": {"name": "blessed-horizon-campaign-service-canaryupstream-80",
                                        "namespace": "blessed-horizon"}}, "weight": 15}]}}}]}})"));
    EXPECT_EQ(router->readWeights(ctx, objects[2]), Weights::forCanary(15));
    EXPECT_EQ(makeRouter("gloo:gloo-system")->provider(), "gloo");
}

TEST(GlooRouter, AbTestingMatchersThenPrimary) {
    json canary = canaryFor("gloo");
    canary["spec"]["analysis"]["match"] = json::parse(R"([
      {"headers": {"x-canary": {"exact": "insider"}}, "method": {"exact": "GET"}},
      {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}])");
    RouteContext ctx = contextOf(canary);
    std::unique_ptr<Router> router = makeRouter("gloo");
    json table = router->build(ctx, Weights::forCanary(100))[2];
    const json& routes = table["spec"]["routes"];
    ASSERT_EQ(routes.size(), 2u);
    EXPECT_EQ(routes[0]["matchers"], json::parse(R"([
      {"headers": [{"name": "x-canary", "value": "insider"}], "methods": ["GET"]},
      {"headers": [{"name": "cookie", "value": "^(.*?;)?(canary=always)(;.*)?$", "regex": true}]}])"));
    EXPECT_FALSE(routes[1].contains("matchers"));
    EXPECT_EQ(routes[1]["routeAction"]["multi"]["destinations"][0]["weight"], 100);
    EXPECT_EQ(router->readWeights(ctx, table), Weights::forCanary(100));

    json prefix = canaryFor("gloo");
    prefix["spec"]["analysis"]["match"] = json::parse(R"([{"headers": {"x": {"prefix": "a"}}}])");
    EXPECT_THROW(router->checkSpec(contextOf(prefix)), RouterError);
    EXPECT_THROW(router->build(ctx, Weights::forCanary(10, true)), RouterError) << "mirror";
}

// --- Kuma ------------------------------------------------------------------------------------

TEST(KumaRouter, MeshHttpRouteWithFlaggersServiceNames) {
    RouteContext ctx = contextOf(canaryFor("kuma"));
    std::unique_ptr<Router> router = makeRouter("kuma");
    std::vector<kube::Object> objects = router->build(ctx, Weights::forCanary(25));
    ASSERT_EQ(objects.size(), 1u);
    EXPECT_EQ(objects[0], json::parse(R"({
      "apiVersion": "kuma.io/v1alpha1", "kind": "MeshHTTPRoute",
      "metadata": {"name": "campaign-service", "namespace": "blessed-horizon"},
      "spec": {"targetRef": {"kind": "Mesh"}, "to": [{
        "targetRef": {"kind": "MeshService", "name": "campaign-service_blessed-horizon_svc_80"},
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                   "default": {"backendRefs": [
          {"kind": "MeshService", "name": "campaign-service-primary_blessed-horizon_svc_80",
           "weight": 75},
          {"kind": "MeshService", "name": "campaign-service-canary_blessed-horizon_svc_80",
           "weight": 25}]}}]}]}})"));
    EXPECT_EQ(router->readWeights(ctx, objects[0]), Weights::forCanary(25));
    EXPECT_THROW(router->build(ctx, Weights::forCanary(25, true)), RouterError) << "mirror";
}

TEST(KumaRouter, AbTestingRuleThenPrimary) {
    json canary = canaryFor("kuma");
    canary["spec"]["analysis"]["match"] = json::parse(R"([
      {"headers": {"x-canary": {"exact": "insider"}}, "method": {"exact": "GET"}},
      {"headers": {"cookie": {"regex": "canary=always"}, "x-tier": {"prefix": "beta"}}}])");
    RouteContext ctx = contextOf(canary);
    std::unique_ptr<Router> router = makeRouter("kuma");
    json route = router->build(ctx, Weights::forCanary(100))[0];
    const json& rules = route["spec"]["to"][0]["rules"];
    ASSERT_EQ(rules.size(), 2u);
    EXPECT_EQ(rules[0]["matches"], json::parse(R"([
      {"path": {"type": "PathPrefix", "value": "/"}, "method": "GET",
       "headers": [{"name": "x-canary", "type": "Exact", "value": "insider"}]},
      {"path": {"type": "PathPrefix", "value": "/"},
       "headers": [{"name": "cookie", "type": "RegularExpression", "value": "canary=always"},
                   {"name": "x-tier", "type": "Prefix", "value": "beta"}]}])"));
    EXPECT_EQ(rules[1]["default"]["backendRefs"][0]["weight"], 100);
    EXPECT_EQ(rules[1]["default"]["backendRefs"][1]["weight"], 0);
    EXPECT_EQ(router->readWeights(ctx, route), Weights::forCanary(100));

    json byUri = canaryFor("kuma");
    byUri["spec"]["analysis"]["match"] = json::parse(R"([{"uri": {"prefix": "/beta"}}])");
    EXPECT_THROW(router->checkSpec(contextOf(byUri)), RouterError);
}

// --- Skipper ---------------------------------------------------------------------------------

json skipperIngress() {
    return json::parse(R"J({
      "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
      "metadata": {"name": "web", "namespace": "blessed-horizon", "labels": {"team": "growth"},
        "annotations": {"zalando.org/skipper-predicate": "Weight(100) && Host(/^api/)",
                        "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
      "spec": {"ingressClassName": "skipper", "rules": [{"host": "api.blessedhorizon.org",
        "http": {"paths": [
          {"path": "/", "pathType": "Prefix",
           "backend": {"service": {"name": "campaign-service", "port": {"number": 80}}}},
          {"path": "/static", "pathType": "Prefix",
           "backend": {"service": {"name": "cdn", "port": {"number": 80}}}}]}}]}})J");
}

TEST(SkipperRouter, CanaryIngressAsFlagger) {
    json canary = canaryFor("skipper");
    canary["spec"]["ingressRef"] = {
        {"apiVersion", "networking.k8s.io/v1"}, {"kind", "Ingress"}, {"name", "web"}};
    RouteContext ctx = contextOf(canary);
    std::unique_ptr<Router> router = makeRouter("skipper");
    ASSERT_EQ(router->inputs(ctx).size(), 1u);
    EXPECT_EQ(router->inputs(ctx)[0].name, "web");
    json ingress = router->build(ctx, Weights::forCanary(20), {skipperIngress()})[0];
    EXPECT_EQ(ingress["metadata"], json::parse(R"J({"name": "web-canary",
      "namespace": "blessed-horizon", "labels": {"team": "growth"}, "annotations": {
        "zalando.org/backend-weights":
          "{\"campaign-service-canary\":20,\"campaign-service-primary\":80}",
        "zalando.org/skipper-predicate": "Weight(100) && Host(/^api/)"}})J"));
    const json& paths = ingress["spec"]["rules"][0]["http"]["paths"];
    ASSERT_EQ(paths.size(), 3u);
    EXPECT_EQ(paths[0]["backend"]["service"]["name"], "campaign-service-primary");
    EXPECT_EQ(paths[1]["backend"]["service"]["name"], "campaign-service-canary");
    EXPECT_EQ(paths[1]["path"], "/");
    EXPECT_EQ(paths[2]["backend"]["service"]["name"], "cdn");
    EXPECT_EQ(router->readWeights(ctx, ingress), Weights::forCanary(20));

    // No canary traffic: the canary Ingress is switched off.
    json off = router->build(ctx, Weights{}, {skipperIngress()})[0];
    EXPECT_EQ(off["metadata"]["annotations"]["zalando.org/skipper-predicate"],
              "False() && Weight(100) && Host(/^api/)");
    EXPECT_EQ(router->readWeights(ctx, off), Weights{});

    json noPath = skipperIngress();
    noPath["spec"]["rules"][0]["http"]["paths"].erase(0);
    EXPECT_THROW(router->build(ctx, Weights{}, {noPath}), RouterError);
    json noRef = canaryFor("skipper");
    EXPECT_THROW(router->checkSpec(contextOf(noRef)), RouterError);
}

// --- APISIX ----------------------------------------------------------------------------------

json apisixRoute() {
    return json::parse(R"({
      "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
      "metadata": {"name": "web", "namespace": "blessed-horizon", "labels": {"team": "growth"}},
      "spec": {"ingressClassName": "apisix", "http": [{"name": "main",
        "match": {"hosts": ["api.blessedhorizon.org"], "paths": ["/*"]},
        "backends": [{"serviceName": "campaign-service", "servicePort": 80,
                      "resolveGranularity": "service"}]}]}})");
}

TEST(ApisixRouter, CanaryRouteAsFlagger) {
    json canary = canaryFor("apisix");
    canary["spec"]["routeRef"] = {
        {"apiVersion", "apisix.apache.org/v2"}, {"kind", "ApisixRoute"}, {"name", "web"}};
    RouteContext ctx = contextOf(canary);
    std::unique_ptr<Router> router = makeRouter("apisix");
    ASSERT_EQ(router->inputs(ctx).size(), 1u);
    EXPECT_EQ(router->inputs(ctx)[0].kind, "ApisixRoute");
    json route = router->build(ctx, Weights::forCanary(35), {apisixRoute()})[0];
    EXPECT_EQ(route, json::parse(R"({
      "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
      "metadata": {"name": "web-canary", "namespace": "blessed-horizon",
                   "labels": {"team": "growth"}},
      "spec": {"ingressClassName": "apisix", "http": [{"name": "main", "priority": 10000,
        "match": {"hosts": ["api.blessedhorizon.org"], "paths": ["/*"]},
        "backends": [
          {"serviceName": "campaign-service-primary", "servicePort": 80,
           "resolveGranularity": "service", "weight": 65},
          {"serviceName": "campaign-service-canary", "servicePort": 80,
           "resolveGranularity": "service", "weight": 35}]}]}})"));
    EXPECT_EQ(router->readWeights(ctx, route), Weights::forCanary(35));

    json noBackend = apisixRoute();
    noBackend["spec"]["http"][0].erase("backends");
    EXPECT_THROW(router->build(ctx, Weights{}, {noBackend}), RouterError);
    EXPECT_THROW(router->checkSpec(contextOf(canaryFor("apisix"))), RouterError) << "no routeRef";
}

// --- App Mesh --------------------------------------------------------------------------------

TEST(AppMeshRouter, VirtualNodesRouterAndServicesAsFlagger) {
    const json canary = canaryFor("appmesh:v1beta2");
    RouteContext ctx = contextOf(canary);
    std::unique_ptr<Router> router = makeRouter("appmesh:v1beta2");
    EXPECT_TRUE(router->inputs(ctx).empty()) << "service.backends is in the parsed spec";
    std::vector<kube::Object> objects = router->build(ctx, Weights::forCanary(40));
    ASSERT_EQ(objects.size(), 6u);
    // The listeners are on the container port: service.targetPort (8080), not port (80).
    EXPECT_EQ(objects[0], json::parse(R"({
      "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualNode",
      "metadata": {"name": "campaign-service-primary", "namespace": "blessed-horizon"},
      "spec": {"podSelector": {"matchLabels": {"app": "campaign-service-primary"}},
               "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
               "serviceDiscovery": {"dns": {
                 "hostname": "campaign-service-primary.blessed-horizon.svc.cluster.local"}}}})"));
    EXPECT_EQ(objects[1]["spec"]["podSelector"]["matchLabels"]["app"], "campaign-service");
    EXPECT_EQ(objects[2], json::parse(R"({
      "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualRouter",
      "metadata": {"name": "campaign-service", "namespace": "blessed-horizon"},
      "spec": {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
        "routes": [{"name": "campaign-service", "httpRoute": {"match": {"prefix": "/"},
          "action": {"weightedTargets": [
            {"virtualNodeRef": {"name": "campaign-service-primary"}, "weight": 60},
            {"virtualNodeRef": {"name": "campaign-service-canary"}, "weight": 40}]}}}]}})"));
    EXPECT_EQ(objects[3]["spec"], json::parse(R"({
      "awsName": "campaign-service.blessed-horizon.svc.cluster.local",
      "provider": {"virtualRouter": {"virtualRouterRef": {"name": "campaign-service"}}}})"));
    EXPECT_EQ(objects[4]["metadata"]["name"], "campaign-service-canary");
    EXPECT_EQ(router->readWeights(ctx, objects[4]), Weights::forCanary(100))
        << "the canary's own router always reaches the canary";
    EXPECT_EQ(objects[5]["spec"]["provider"]["virtualRouter"]["virtualRouterRef"]["name"],
              "campaign-service-canary");
    EXPECT_EQ(router->readWeights(ctx, objects[2]), Weights::forCanary(40));
    EXPECT_THROW(makeRouter("appmesh"), RouterError) << "Flagger's v1beta1 API";
}

// service.backends, as Flagger's v1beta2 router: on both VirtualNodes, a VirtualService of the
// namespace by name, or by ARN for "arn:aws..." entries, read from the parsed spec (the router
// has no inputs to GET).
TEST(AppMeshRouter, BackendsOnBothVirtualNodes) {
    const std::string arn =
        "arn:aws:appmesh:eu-west-1:123456789012:mesh/shared/virtualService/payments.example.org";
    json canary = canaryFor("appmesh:v1beta2");
    canary["spec"]["service"]["backends"] = {"ledger", arn, "", "podinfo.test"};
    RouteContext ctx = contextOf(canary);
    std::unique_ptr<Router> router = makeRouter("appmesh:v1beta2");
    EXPECT_TRUE(router->inputs(ctx).empty());
    std::vector<kube::Object> objects = router->build(ctx, Weights::forCanary(10));
    ASSERT_EQ(objects.size(), 6u);
    const json expected = json::parse(R"([
      {"virtualService": {"virtualServiceRef": {"name": "ledger"}}},
      {"virtualService": {"virtualServiceARN":
        "arn:aws:appmesh:eu-west-1:123456789012:mesh/shared/virtualService/payments.example.org"}},
      {"virtualService": {"virtualServiceRef": {"name": "podinfo.test"}}}])");
    for (int node : {0, 1}) {
        SCOPED_TRACE(objects[node]["metadata"]["name"].get<std::string>());
        EXPECT_EQ(objects[node]["kind"], "VirtualNode");
        EXPECT_EQ(objects[node]["spec"]["backends"], expected);
    }
    EXPECT_EQ(objects[0]["metadata"]["name"], "campaign-service-primary");
    EXPECT_EQ(objects[1]["metadata"]["name"], "campaign-service-canary");
    for (int other : {2, 3, 4, 5}) EXPECT_FALSE(objects[other]["spec"].contains("backends"));
    EXPECT_EQ(router->readWeights(ctx, objects[2]), Weights::forCanary(10));

    // No backends (absent or empty): no backends field, which removes them from the live nodes
    // (server-side apply).
    canary["spec"]["service"]["backends"] = json::array();
    objects = router->build(contextOf(canary), Weights{});
    EXPECT_FALSE(objects[0]["spec"].contains("backends"));
    EXPECT_FALSE(objects[1]["spec"].contains("backends"));
    canary["spec"]["service"].erase("backends");
    objects = router->build(contextOf(canary), Weights{});
    EXPECT_FALSE(objects[0]["spec"].contains("backends"));

    // backends must be a list of strings (the parsed spec reports anything else).
    canary["spec"]["service"]["backends"] = {"ledger", 7};
    EXPECT_THROW(contextOf(canary), RouterError);
}

// The listeners' port, as Flagger's getContainerPort: service.targetPort when it is a number,
// else service.port (a named targetPort, or none).
TEST(AppMeshRouter, ListenersOnTheContainerPort) {
    std::unique_ptr<Router> router = makeRouter("appmesh:v1beta2");
    auto listenerPorts = [&](const json& canary) {
        std::vector<int> ports;
        for (const kube::Object& object : router->build(contextOf(canary), Weights{})) {
            if (!object["spec"].contains("listeners")) continue;
            ports.push_back(object["spec"]["listeners"][0]["portMapping"]["port"].get<int>());
        }
        return ports;
    };
    json canary = canaryFor("appmesh:v1beta2");
    canary["spec"]["service"]["port"] = 80;
    canary["spec"]["service"]["targetPort"] = 9898;
    // Both VirtualNodes and both VirtualRouters.
    EXPECT_EQ(listenerPorts(canary), (std::vector<int>{9898, 9898, 9898, 9898}));
    canary["spec"]["service"]["targetPort"] = "http";
    EXPECT_EQ(listenerPorts(canary), (std::vector<int>{80, 80, 80, 80}));
    canary["spec"]["service"].erase("targetPort");
    EXPECT_EQ(listenerPorts(canary), (std::vector<int>{80, 80, 80, 80}));
}

}  // namespace
}  // namespace sluice::router
