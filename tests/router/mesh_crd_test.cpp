// The routers added with the provider table against the in-process API server with each
// router's OFFICIAL CRD installed (../shared/thirdparty-crds/): the objects are accepted and
// nothing is pruned, the weights move through a canary run and read back, a hand edit of the
// weights is healed by the next reconcile, and a rollback routes everything to the primary.
// Each provider also has a negative control proving the server validates against that CRD.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>

#include "apiserver/api_server.h"
#include "router_test_util.h"
#include "sluice/kube/client.h"
#include "sluice/router/apply.h"
#include "sluice/router/router.h"

namespace sluice::router {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ApiServer;
using testing::ApiServerOptions;
using testing::sharedPath;
using testutil::exampleCanary;

// One provider under test: the CRD files it needs, the served versions to wait for, its Canary,
// a hand edit of the live weights object (a merge patch that sets primary/canary to 50/50), and
// a corruption of a built object that the CRD's schema must refuse.
struct ProviderCase {
    std::string label;  // the test's name
    std::string provider;
    std::vector<std::string> crds;  // relative to the shared folder
    std::vector<kube::GroupVersionKind> served;
    std::function<json()> canary;
    std::function<json(const json& live)> handEdit;
    std::function<json(json built)> invalid;
    std::string invalidField;  // named in the server's refusal
    // Objects the router reads (the user's Ingress), created in the namespace first.
    std::function<std::vector<json>(const std::string& ns)> inputs = nullptr;
};

// Every field desired sets is in actual with the same value (a pruned field shows as missing).
bool containsAll(const json& actual, const json& desired, const std::string& path,
                 std::string& why) {
    if (desired.is_object()) {
        if (!actual.is_object()) {
            why = path + ": not an object";
            return false;
        }
        for (auto it = desired.begin(); it != desired.end(); ++it) {
            if (!actual.contains(it.key())) {
                why = path + "." + it.key() + ": missing from the server's answer (pruned?)";
                return false;
            }
            if (!containsAll(actual[it.key()], *it, path + "." + it.key(), why)) return false;
        }
        return true;
    }
    if (desired.is_array()) {
        if (!actual.is_array() || actual.size() != desired.size()) {
            why = path + ": " + actual.dump() + " instead of " + desired.dump();
            return false;
        }
        for (size_t i = 0; i < desired.size(); ++i) {
            if (!containsAll(actual[i], desired[i], path + "[" + std::to_string(i) + "]", why))
                return false;
        }
        return true;
    }
    if (actual != desired) {
        why = path + ": " + actual.dump() + " instead of " + desired.dump();
        return false;
    }
    return true;
}

json withProvider(const std::string& provider, const std::string& example = "canary.yaml") {
    json canary = exampleCanary(example);
    canary["spec"]["provider"] = provider;
    return canary;
}

// SMI: backends [canary, primary].
json smiHandEdit(const json& live) {
    json backends = live["spec"]["backends"];
    for (json& backend : backends) backend["weight"] = 50;
    return {{"spec", {{"backends", backends}}}};
}

// A Contour canary with a path prefix, timeout and retries, and optionally A/B header matches.
json richContourCanary(bool ab) {
    json canary = withProvider("contour");
    canary["spec"]["service"]["timeout"] = "15s";
    canary["spec"]["service"]["retries"] = {{"attempts", 3}, {"perTryTimeout", "5s"}};
    canary["spec"]["service"]["match"] = json::parse(R"([{"uri": {"prefix": "/api"}}])");
    if (ab) {
        canary["spec"]["analysis"]["match"] = json::parse(R"([
          {"headers": {"x-canary": {"exact": "insider"}, "x-region": {"suffix": "-eu"}}},
          {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}])");
    }
    return canary;
}

// Contour: the first route's services [primary, canary].
json contourHandEdit(const json& live) {
    json routes = live["spec"]["routes"];
    for (json& service : routes[0]["services"]) service["weight"] = 50;
    return {{"spec", {{"routes", routes}}}};
}

// Gloo: the first route's destinations [primary, canary].
json glooHandEdit(const json& live) {
    json routes = live["spec"]["routes"];
    for (json& d : routes[0]["routeAction"]["multi"]["destinations"]) d["weight"] = 50;
    return {{"spec", {{"routes", routes}}}};
}

// Kuma: the first rule's backendRefs [primary, canary].
json kumaHandEdit(const json& live) {
    json to = live["spec"]["to"];
    for (json& ref : to[0]["rules"][0]["default"]["backendRefs"]) ref["weight"] = 50;
    return {{"spec", {{"to", to}}}};
}

std::vector<ProviderCase> providerCases() {
    const std::string linkerdSmi = "thirdparty-crds/linkerd-smi-v0.2.7/trafficsplit-crd.yaml";
    const std::string contour = "thirdparty-crds/contour-v1.33.6/01-crds.yaml";
    const std::string traefik =
        "thirdparty-crds/traefik-helm-chart-v41.3.0/traefik.io_traefikservices.yaml";
    const kube::GroupVersionKind httpProxy{"projectcontour.io", "v1", "HTTPProxy"};
    const kube::GroupVersionKind traefikService{"traefik.io", "v1alpha1", "TraefikService"};
    const std::string glooRouteTable =
        "thirdparty-crds/gloo-v1.22.1/gateway.solo.io_v1_RouteTable.yaml";
    const std::string glooUpstream = "thirdparty-crds/gloo-v1.22.1/gloo.solo.io_v1_Upstream.yaml";
    const kube::GroupVersionKind routeTable{"gateway.solo.io", "v1", "RouteTable"};
    const kube::GroupVersionKind upstream{"gloo.solo.io", "v1", "Upstream"};
    const std::string kuma = "thirdparty-crds/kuma-v2.14.3/kuma.io_meshhttproutes.yaml";
    const kube::GroupVersionKind meshHttpRoute{"kuma.io", "v1alpha1", "MeshHTTPRoute"};
    const std::string apisix =
        "thirdparty-crds/apisix-ingress-controller-2.2.0/apisix.apache.org_apisixroutes.yaml";
    const kube::GroupVersionKind apisixRoute{"apisix.apache.org", "v2", "ApisixRoute"};
    const std::string appMesh = "thirdparty-crds/aws-app-mesh-controller-v1.13.3/appmesh.k8s.aws_";
    const std::vector<std::string> appMeshCrds = {appMesh + "virtualnodes.yaml",
                                                  appMesh + "virtualrouters.yaml",
                                                  appMesh + "virtualservices.yaml"};
    const kube::GroupVersionKind virtualRouter{"appmesh.k8s.aws", "v1beta2", "VirtualRouter"};
    const kube::GroupVersionKind virtualNode{"appmesh.k8s.aws", "v1beta2", "VirtualNode"};
    const kube::GroupVersionKind meshVirtualService{"appmesh.k8s.aws", "v1beta2", "VirtualService"};
    const kube::GroupVersionKind split1{"split.smi-spec.io", "v1alpha1", "TrafficSplit"};
    const kube::GroupVersionKind split2{"split.smi-spec.io", "v1alpha2", "TrafficSplit"};
    return {
        {"linkerd",
         "linkerd",
         {linkerdSmi},
         {split1, split2},
         [] { return withProvider("linkerd"); },
         smiHandEdit,
         [](json split) {
             split["spec"]["backends"][0].erase("service");  // required
             return split;
         },
         "service"},
        {"smi_v1alpha2",
         "smi:v1alpha2",
         {linkerdSmi},
         {split1, split2},
         [] { return withProvider("smi:v1alpha2", "stepped-canary.yaml"); },
         smiHandEdit,
         [](json split) {
             split["spec"]["backends"][0]["weight"] = "abc";  // a number in v1alpha2
             return split;
         },
         "weight"},
        {"contour",
         "contour",
         {contour},
         {httpProxy},
         [] { return richContourCanary(false); },
         contourHandEdit,
         [](json proxy) {
             proxy["spec"]["routes"][0]["services"][0]["port"] = 70000;  // at most 65535
             return proxy;
         },
         "port"},
        {"contour_ab",
         "contour",
         {contour},
         {httpProxy},
         [] { return richContourCanary(true); },
         contourHandEdit,
         [](json proxy) {
             proxy["spec"]["routes"][0]["conditions"][1]["header"]["name"] = 7;  // a string
             return proxy;
         },
         "name"},
        {"traefik",
         "traefik",
         {traefik},
         {traefikService},
         [] { return withProvider("traefik", "stepped-canary.yaml"); },
         [](const json& live) {
             json services = live["spec"]["weighted"]["services"];
             for (json& service : services) service["weight"] = 50;
             return json{{"spec", {{"weighted", {{"services", services}}}}}};
         },
         [](json service) {
             service["spec"]["weighted"]["services"][0]["weight"] = -5;  // minimum 0
             return service;
         },
         "weight"},
        {"gloo",
         "gloo",
         {glooRouteTable, glooUpstream},
         {routeTable, upstream},
         [] { return withProvider("gloo", "stepped-canary.yaml"); },
         glooHandEdit,
         [](json table) {
             table["spec"]["routes"][0]["routeAction"]["multi"]["destinations"][0]["weight"] = -1;
             return table;
         },
         "weight"},
        {"gloo_ab",
         "gloo",
         {glooRouteTable, glooUpstream},
         {routeTable, upstream},
         [] {
             json canary = withProvider("gloo");
             canary["spec"]["analysis"]["match"] = json::parse(R"([
               {"headers": {"x-canary": {"exact": "insider"}}, "method": {"exact": "GET"}},
               {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}])");
             return canary;
         },
         glooHandEdit,
         [](json table) {
             table["spec"]["routes"][0]["matchers"][0]["headers"][0]["regex"] = "yes";  // bool
             return table;
         },
         "regex"},
        {"kuma",
         "kuma",
         {kuma},
         {meshHttpRoute},
         [] { return withProvider("kuma", "stepped-canary.yaml"); },
         kumaHandEdit,
         [](json route) {
             route["spec"]["to"][0]["rules"][0]["default"]["backendRefs"][0]["weight"] = -1;
             return route;
         },
         "weight"},
        {"kuma_ab",
         "kuma",
         {kuma},
         {meshHttpRoute},
         [] {
             json canary = withProvider("kuma");
             canary["spec"]["analysis"]["match"] = json::parse(R"([
               {"headers": {"x-canary": {"exact": "insider"}}, "method": {"exact": "GET"}},
               {"headers": {"cookie": {"regex": "canary=always"}}}])");
             return canary;
         },
         kumaHandEdit,
         [](json route) {
             route["spec"]["to"][0]["rules"][0]["matches"][0]["method"] = "FETCH";  // an enum
             return route;
         },
         "method"},
        {"apisix",
         "apisix",
         {apisix},
         {apisixRoute},
         [] {
             json canary = withProvider("apisix", "stepped-canary.yaml");
             canary["spec"]["routeRef"] = {
                 {"apiVersion", "apisix.apache.org/v2"}, {"kind", "ApisixRoute"}, {"name", "web"}};
             return canary;
         },
         [](const json& live) {
             json http = live["spec"]["http"];
             for (json& backend : http[0]["backends"]) backend["weight"] = 50;
             return json{{"spec", {{"http", http}}}};
         },
         [](json route) {
             route["spec"]["http"][0]["backends"][0]["weight"] = "heavy";  // an integer
             return route;
         },
         "weight",
         [](const std::string& ns) {
             return std::vector<json>{json::parse(R"({"apiVersion": "apisix.apache.org/v2",
               "kind": "ApisixRoute", "metadata": {"name": "web", "namespace": ")" +
                                                  ns + R"("},
               "spec": {"ingressClassName": "apisix", "http": [{"name": "main",
                 "match": {"hosts": ["api.example.org"], "paths": ["/*"]},
                 "backends": [{"serviceName": "bifrost-api", "servicePort": 8080}]}]}})")};
         }},
        {"appmesh",
         "appmesh:v1beta2",
         appMeshCrds,
         {virtualRouter, virtualNode, meshVirtualService},
         [] { return withProvider("appmesh:v1beta2", "stepped-canary.yaml"); },
         [](const json& live) {
             json routes = live["spec"]["routes"];
             for (json& t : routes[0]["httpRoute"]["action"]["weightedTargets"]) t["weight"] = 50;
             return json{{"spec", {{"routes", routes}}}};
         },
         [](json router) {
             router["spec"]["listeners"][0]["portMapping"]["protocol"] = "smtp";  // an enum
             return router;
         },
         "protocol"},
        // service.backends on both VirtualNodes: a VirtualService by name and one by ARN.
        {"appmesh_backends",
         "appmesh:v1beta2",
         appMeshCrds,
         {virtualRouter, virtualNode, meshVirtualService},
         [] {
             json canary = withProvider("appmesh:v1beta2", "stepped-canary.yaml");
             canary["spec"]["service"]["backends"] = {
                 "ledger",
                 "arn:aws:appmesh:eu-west-1:123456789012:mesh/shared/virtualService/"
                 "payments.example.org"};
             return canary;
         },
         [](const json& live) {
             json routes = live["spec"]["routes"];
             for (json& t : routes[0]["httpRoute"]["action"]["weightedTargets"]) t["weight"] = 50;
             return json{{"spec", {{"routes", routes}}}};
         },
         [](json router) {
             router["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"][0]["weight"] =
                 "heavy";  // an integer
             return router;
         },
         "weight"},
        // Skipper writes a core Ingress: no CRD, the server's own Ingress validation.
        {"skipper",
         "skipper",
         {},
         {},
         [] {
             json canary = withProvider("skipper");
             canary["spec"]["ingressRef"] = {
                 {"apiVersion", "networking.k8s.io/v1"}, {"kind", "Ingress"}, {"name", "web"}};
             return canary;
         },
         [](const json& live) {
             json annotations = {
                 {"zalando.org/backend-weights",
                  R"({"campaign-service-primary":50,"campaign-service-canary":50})"}};
             (void)live;
             return json{{"metadata", {{"annotations", annotations}}}};
         },
         [](json ingress) {
             ingress["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "Sideways";
             return ingress;
         },
         "pathType",
         [](const std::string& ns) {
             return std::vector<json>{json::parse(R"({"apiVersion": "networking.k8s.io/v1",
               "kind": "Ingress", "metadata": {"name": "web", "namespace": ")" +
                                                  ns + R"("},
               "spec": {"ingressClassName": "skipper", "rules": [{"host": "api.example.org",
                 "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {
                   "name": "campaign-service", "port": {"number": 80}}}}]}}]}})")};
         }},
    };
}

void PrintTo(const ProviderCase& c, std::ostream* os) {
    *os << c.label;
}

kube::ApplyOptions forced() {
    kube::ApplyOptions options;
    options.force = true;
    return options;
}

class MeshCrdTest : public ::testing::TestWithParam<ProviderCase> {
  protected:
    void SetUp() override {
        for (const std::string& crd : GetParam().crds) SLUICE_SKIP_WITHOUT_SHARED(crd);
        ApiServerOptions options;
        options.simulateWorkloads = false;  // no background writes racing the assertions
        server_ = std::make_unique<ApiServer>(options);
        server_->start();
        kube::ClusterConfig config;
        config.server = server_->url();
        config.caPem = server_->caPem();
        config.token = server_->token();
        config.requestTimeout = 20s;
        config.retryBaseDelay = 20ms;
        config.maxRetries = 3;
        config.qps = 0;
        config.source = "mesh router test";
        client_ = std::make_unique<kube::RestClient>(config);
        server_->createFromFile(testing::sourcePath("crds/sluice.io_canaries.yaml"));
        for (const std::string& crd : GetParam().crds) server_->createFromFile(sharedPath(crd));
        std::vector<kube::GroupVersionKind> served = GetParam().served;
        served.push_back({"sluice.io", "v1alpha1", "Canary"});
        for (const kube::GroupVersionKind& gvk : served) {
            ASSERT_TRUE(testing::eventually(
                [&] {
                    try {
                        client_->resourceFor(gvk);
                        return true;
                    } catch (const kube::ApiError&) {
                        return false;
                    }
                },
                20s))
                << gvk.str();
        }
    }
    void TearDown() override {
        client_.reset();
        if (server_) server_->stop();
    }

    RouteContext createCanary(json canary, const std::string& ns) {
        server_->create(
            {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
        canary["metadata"]["namespace"] = ns;
        if (GetParam().inputs) {
            for (const json& input : GetParam().inputs(ns)) server_->create(input);
        }
        json stored = server_->create(canary);
        std::string target = stored["spec"]["targetRef"]["name"];
        return makeRouteContext(stored, PodSelector{"app", target});
    }

    // Applies the objects for these weights and checks they were stored whole, are owned by
    // the Canary and read back as these weights.
    void reconcile(const Router& router, const RouteContext& ctx, const Weights& weights) {
        SCOPED_TRACE(toString(weights));
        std::vector<kube::Object> desired =
            desiredObjects(router, ctx, weights, readInputs(*client_, router, ctx));
        ReconcileResult result;
        try {
            result = reconcileRoutes(*client_, router, ctx, weights);
        } catch (const kube::ApiError& error) {
            FAIL() << "rejected: " << error.code() << " " << error.message();
        }
        ASSERT_EQ(result.applied.size(), desired.size());
        for (size_t i = 0; i < desired.size(); ++i) {
            json owned = withOwner(desired[i], ctx);
            std::string why;
            EXPECT_TRUE(containsAll(result.applied[i], owned, "", why))
                << owned["kind"] << " " << owned["metadata"]["name"] << ": " << why;
            EXPECT_EQ(result.applied[i]["metadata"]["ownerReferences"][0]["uid"], ctx.canaryUid);
        }
        EXPECT_EQ(result.weights, weights);
        EXPECT_EQ(readLiveWeights(*client_, router, ctx), weights);
    }

    std::unique_ptr<ApiServer> server_;
    std::unique_ptr<kube::RestClient> client_;
};

TEST_P(MeshCrdTest, CanaryRunHealAndRollback) {
    const ProviderCase& c = GetParam();
    std::unique_ptr<Router> router = makeRouter(c.provider);
    RouteContext ctx = createCanary(c.canary(), "run");
    EXPECT_EQ(readLiveWeights(*client_, *router, ctx), std::nullopt);

    // Initialised, then the weights move step by step.
    for (int canary : {0, 10, 20, 50}) reconcile(*router, ctx, Weights::forCanary(canary));

    // Someone edits the weights by hand (another field manager, as kubectl edit would).
    ObjectRef ref = router->weightsObject(ctx);
    json live = client_->get(ref.gvk(), ref.namespaceName, ref.name);
    kube::PatchOptions byHand;
    byHand.fieldManager = "kubectl-edit";
    client_->patch(ref.gvk(), ref.namespaceName, ref.name, kube::PatchType::Merge,
                   c.handEdit(live).dump(), byHand);
    EXPECT_EQ(readLiveWeights(*client_, *router, ctx), (Weights{50, 50, false})) << "drift seen";
    reconcile(*router, ctx, Weights::forCanary(20));  // healed

    // Promotion routes everything to the canary, then back to the (promoted) primary; a failed
    // run rolls back to the primary the same way.
    reconcile(*router, ctx, Weights::forCanary(100));
    reconcile(*router, ctx, Weights{});
    reconcile(*router, ctx, Weights::forCanary(30));
    reconcile(*router, ctx, Weights{});  // rollback
    EXPECT_EQ(readLiveWeights(*client_, *router, ctx), Weights{});
}

// The server validates against the official CRD: a corrupted object is refused and nothing is
// stored; the pruning check would notice a field the schema does not know.
TEST_P(MeshCrdTest, TheCrdSchemaIsEnforced) {
    const ProviderCase& c = GetParam();
    if (c.crds.empty()) GTEST_SKIP() << "a built-in kind: the test server validates CRDs only";
    std::unique_ptr<Router> router = makeRouter(c.provider);
    RouteContext ctx = createCanary(c.canary(), "negative");
    ObjectRef ref = router->weightsObject(ctx);
    json built;
    for (const json& object :
         router->build(ctx, Weights::forCanary(10), readInputs(*client_, *router, ctx))) {
        if (object["kind"] == ref.kind && object["metadata"]["name"] == ref.name) built = object;
    }
    ASSERT_FALSE(built.is_null());
    built = withOwner(built, ctx);
    try {
        client_->apply(c.invalid(built), forced());
        FAIL() << "invalid object accepted";
    } catch (const kube::ApiError& error) {
        EXPECT_TRUE(error.isInvalid()) << error.code() << " " << error.message();
        EXPECT_NE(error.message().find(c.invalidField), std::string::npos) << error.message();
    }
    EXPECT_THROW(client_->get(ref.gvk(), ref.namespaceName, ref.name), kube::ApiError)
        << "nothing was stored";

    json unknown = built;
    unknown["spec"]["notInTheSchema"] = 1;
    json stored = client_->apply(unknown, forced());
    std::string why;
    EXPECT_FALSE(containsAll(stored, unknown, "", why)) << "pruned field not noticed";
    EXPECT_TRUE(containsAll(stored, built, "", why)) << why;
}

INSTANTIATE_TEST_SUITE_P(Providers, MeshCrdTest, ::testing::ValuesIn(providerCases()),
                         [](const ::testing::TestParamInfo<ProviderCase>& info) {
                             return info.param.label;
                         });

}  // namespace
}  // namespace sluice::router
