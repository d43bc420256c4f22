// The routers against the in-process API server with the REAL Gateway API and Istio CRDs (and
// Sluice's Canary CRD) installed: every object the builders produce for the example Canaries and
// richer shapes must be accepted (the server validates custom resources against the CRD's
// OpenAPI schema), nothing may be pruned, the weights must read back, and the objects must be
// owned by the Canary and re-applied over hand edits.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>

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

const std::string kGatewayApiCrds = "thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml";
const std::string kIstioCrds = "thirdparty-crds/istio-1.29.6/networking-crds.yaml";
const kube::GroupVersionKind kHttpRoute{"gateway.networking.k8s.io", "v1", "HTTPRoute"};
const kube::GroupVersionKind kVirtualService{"networking.istio.io", "v1", "VirtualService"};
const kube::GroupVersionKind kService{"", "v1", "Service"};
const kube::GroupVersionKind kCanary{"sluice.io", "v1alpha1", "Canary"};

// The shared poll with this file's default limit.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = 20s) {
    return testing::eventually(condition, limit);
}

// Every field desired sets is in actual with the same value; arrays have the same length and
// match element by element. Fields the server adds (defaults, uid, managedFields) are allowed;
// a field the server pruned (unknown to the schema) shows up as missing.
bool containsAll(const json& actual, const json& desired, const std::string& path,
                 std::string& why) {
    if (desired.is_object()) {
        if (!actual.is_object()) {
            why = path + ": not an object in the server's answer";
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
            if (!containsAll(actual[i], desired[i], path + "[" + std::to_string(i) + "]", why)) {
                return false;
            }
        }
        return true;
    }
    if (actual != desired) {
        why = path + ": " + actual.dump() + " instead of " + desired.dump();
        return false;
    }
    return true;
}

// The test server does not run CEL, so the HTTPRoute CRD's x-kubernetes-validations that can
// concern what the builders write are checked here.
std::vector<std::string> gatewayCelViolations(const json& route) {
    std::vector<std::string> out;
    auto servicePort = [&](const json& ref, const std::string& where) {
        if (ref.value("group", "") == "" && ref.value("kind", "Service") == "Service" &&
            !ref.contains("port")) {
            out.push_back(where + ": Must have port for Service reference");
        }
    };
    const json rules = route["spec"].value("rules", json::array());
    size_t totalMatches = 0;
    for (size_t r = 0; r < rules.size(); ++r) {
        const std::string where = "rules[" + std::to_string(r) + "]";
        const json& rule = rules[r];
        const json matches = rule.value("matches", json::array());
        totalMatches += matches.size();
        for (const json& match : matches) {
            if (!match.contains("path")) continue;
            std::string type = match["path"].value("type", "PathPrefix");
            std::string value = match["path"].value("value", "/");
            if ((type == "Exact" || type == "PathPrefix") &&
                (value.empty() || value[0] != '/' || value.find("//") != std::string::npos)) {
                out.push_back(where + ": path " + value + " is not absolute and clean");
            }
        }
        for (const json& ref : rule.value("backendRefs", json::array())) {
            servicePort(ref, where + ".backendRefs");
        }
        std::map<std::string, int> counts;
        const std::map<std::string, std::string> member = {
            {"RequestHeaderModifier", "requestHeaderModifier"},
            {"ResponseHeaderModifier", "responseHeaderModifier"},
            {"RequestMirror", "requestMirror"},
            {"URLRewrite", "urlRewrite"},
            {"RequestRedirect", "requestRedirect"}};
        for (const json& filter : rule.value("filters", json::array())) {
            std::string type = filter.value("type", "");
            ++counts[type];
            for (const auto& [filterType, field] : member) {
                if ((filterType == type) != filter.contains(field)) {
                    out.push_back(where + ": filter " + type + " and field " + field);
                }
            }
            if (type == "RequestMirror") {
                servicePort(filter["requestMirror"]["backendRef"], where + ".requestMirror");
            }
            if (type == "URLRewrite" &&
                filter["urlRewrite"].value("path", json::object()).value("type", "") ==
                    "ReplacePrefixMatch" &&
                (matches.size() != 1 ||
                 matches[0].value("path", json::object()).value("type", "") != "PathPrefix")) {
                out.push_back(where + ": replacePrefixMatch needs exactly one PathPrefix match");
            }
        }
        for (const auto& [type, count] : counts) {
            if (type != "RequestMirror" && count > 1) out.push_back(where + ": repeated " + type);
        }
    }
    if (totalMatches >= 128) out.push_back("more than 127 matches");
    return out;
}

kube::ApplyOptions forced() {
    kube::ApplyOptions options;
    options.force = true;
    return options;
}

kube::PatchOptions byHand() {
    kube::PatchOptions options;
    options.fieldManager = "kubectl-edit";
    return options;
}

kube::DeleteOptions background() {
    kube::DeleteOptions options;
    options.propagationPolicy = "Background";
    return options;
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += item + "; ";
    return out;
}

class RouterCrdTest : public ::testing::Test {
  protected:
    // The real Gateway API and Istio CRDs come from the shared folder beside the repository.
    // Without them no server is started, and each test skips (a skip in SetUpTestSuite does not
    // skip the tests in this GoogleTest).
    static void SetUpTestSuite() {
        if (!haveCrds()) return;
        ApiServerOptions options;
        options.simulateWorkloads = false;  // no background writes racing the assertions
        server_ = new ApiServer(options);
        server_->start();
        kube::ClusterConfig config;
        config.server = server_->url();
        config.caPem = server_->caPem();
        config.token = server_->token();
        config.requestTimeout = 20s;
        config.retryBaseDelay = 20ms;
        config.maxRetries = 3;
        config.qps = 0;
        config.source = "router test";
        client_ = new kube::RestClient(config);

        for (const std::string& file : {sharedPath(kGatewayApiCrds), sharedPath(kIstioCrds),
                                        testing::sourcePath("crds/sluice.io_canaries.yaml")})
            server_->createFromFile(file);
        for (const kube::GroupVersionKind& gvk :
             {kHttpRoute, kVirtualService, kCanary,
              kube::GroupVersionKind{"networking.istio.io", "v1beta1", "VirtualService"},
              kube::GroupVersionKind{"gateway.networking.k8s.io", "v1beta1", "HTTPRoute"}}) {
            ASSERT_TRUE(eventually([&] {
                try {
                    client_->resourceFor(gvk);
                    return true;
                } catch (const kube::ApiError&) {
                    return false;
                }
            })) << gvk.str();
        }
    }
    static bool haveCrds() {
        return testing::missingShared(kGatewayApiCrds).empty() &&
               testing::missingShared(kIstioCrds).empty();
    }
    void SetUp() override {
        SLUICE_SKIP_WITHOUT_SHARED(kGatewayApiCrds);
        SLUICE_SKIP_WITHOUT_SHARED(kIstioCrds);
    }
    static void TearDownTestSuite() {
        delete client_;
        client_ = nullptr;
        if (!server_) return;  // skipped: no shared CRDs
        server_->stop();
        delete server_;
        server_ = nullptr;
    }

    // Creates the namespace and the Canary (in that namespace) and returns the context built
    // from the stored Canary, as the controller would see it.
    RouteContext createCanary(json canary, const std::string& ns) {
        server_->create(
            {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
        canary["metadata"]["namespace"] = ns;
        json stored = server_->create(canary);
        EXPECT_FALSE(stored["metadata"].value("uid", "").empty());
        std::string target = stored["spec"]["targetRef"]["name"];
        return makeRouteContext(stored, PodSelector{"app", target});
    }

    // Applies the objects for each weights, checking acceptance, no pruning, CEL rules, owner
    // references and the weights read back (from the apply answer and from a fresh GET).
    void reconcileEach(const Router& router, const RouteContext& ctx,
                       const std::vector<Weights>& sequence) {
        for (const Weights& weights : sequence) {
            SCOPED_TRACE(router.provider() + " " + toString(weights));
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
                if (owned["kind"] == "HTTPRoute") {
                    EXPECT_EQ(joined(gatewayCelViolations(result.applied[i])), "");
                }
                const json& refs = result.applied[i]["metadata"]["ownerReferences"];
                ASSERT_EQ(refs.size(), 1u);
                EXPECT_EQ(refs[0]["uid"], ctx.canaryUid);
                EXPECT_EQ(refs[0]["controller"], true);
                EXPECT_EQ(refs[0]["blockOwnerDeletion"], true);
            }
            EXPECT_EQ(result.weights, weights);
            EXPECT_EQ(readLiveWeights(*client_, router, ctx), weights);
        }
    }

    static ApiServer* server_;
    static kube::RestClient* client_;
};

ApiServer* RouterCrdTest::server_ = nullptr;
kube::RestClient* RouterCrdTest::client_ = nullptr;

const std::vector<Weights> kSplits = {Weights{},
                                      Weights::forCanary(10),
                                      Weights::forCanary(50),
                                      Weights::forCanary(100),
                                      Weights{100, 0, true},
                                      Weights{}};

json withGatewayRefs(json canary) {
    canary["spec"]["provider"] = "gatewayapi:v1";
    canary["spec"]["service"]["gatewayRefs"] =
        json::parse(R"([{"name": "public", "namespace": "gateway-system"}])");
    return canary;
}

// Every Flagger-style field the routers pass through, with A/B matches.
json richGatewayCanary() {
    json canary = exampleCanary("stepped-canary.yaml");
    canary["spec"]["service"].update(json::parse(R"({
      "hosts": ["bifrost.example.com", "*.bifrost.example.org"],
      "gatewayRefs": [{"name": "public", "namespace": "gateway-system", "sectionName": "https",
                       "port": 443},
                      {"name": "internal", "sectionName": "http"}],
      "timeout": "30s",
      "match": [{"uri": {"prefix": "/api"}, "method": {"exact": "GET"}}],
      "rewrite": {"uri": "/v2", "authority": "internal.example.com"},
      "headers": {"request": {"set": {"x-env": "prod"}, "add": {"x-via": "sluice"},
                              "remove": ["x-debug"]},
                  "response": {"remove": ["server"]}},
      "apex": {"labels": {"tier": "edge"}, "annotations": {"team": "bifrost"}}})"));
    // The RequestMirror filter's percent.
    canary["spec"]["analysis"]["mirrorWeight"] = 40;
    return canary;
}

json richIstioCanary() {
    json canary = exampleCanary("canary.yaml");
    canary["spec"]["provider"] = "istio";
    canary["spec"]["service"].update(json::parse(R"({
      "portDiscovery": true,
      "match": [{"uri": {"prefix": "/api"}}, {"uri": {"regex": "^/v[0-9]+/.*"}}],
      "rewrite": {"uri": "/", "authority": "backend.local"},
      "timeout": "15s",
      "retries": {"attempts": 3, "perTryTimeout": "5s", "retryOn": "gateway-error,connect-failure"},
      "headers": {"request": {"set": {"x-env": "prod"}}, "response": {"remove": ["server"]}},
      "corsPolicy": {"allowOrigins": [{"exact": "https://example.com"}], "allowMethods": ["GET"],
                     "maxAge": "24h"},
      "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"},
                        "connectionPool": {"http": {"http1MaxPendingRequests": 100}}},
      "apex": {"labels": {"tier": "edge"}}})"));
    canary["spec"]["analysis"]["mirrorWeight"] = 40;
    return canary;
}

json abMatch() {
    return json::parse(R"([{"headers": {"x-canary": {"exact": "insider"}}},
                           {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}])");
}

TEST_F(RouterCrdTest, GatewayApiHttpRoutesValidate) {
    struct Case {
        std::string ns;
        json canary;
    };
    json richAb = richGatewayCanary();
    richAb["spec"]["analysis"]["match"] = abMatch();
    // A prefix rewrite needs a single match, which A/B testing multiplies (RouterError).
    richAb["spec"]["service"].erase("rewrite");
    json queryAb = withGatewayRefs(exampleCanary("canary.yaml"));
    queryAb["spec"]["analysis"]["match"] =
        json::parse(R"([{"queryParams": {"beta": {"exact": "1"}}}])");
    std::vector<Case> cases = {{"gw-stepped", exampleCanary("stepped-canary.yaml")},
                               {"gw-canary", withGatewayRefs(exampleCanary("canary.yaml"))},
                               {"gw-bluegreen", withGatewayRefs(exampleCanary("blue-green.yaml"))},
                               {"gw-rich", richGatewayCanary()},
                               {"gw-rich-ab", richAb},
                               {"gw-query-ab", queryAb}};
    for (const Case& c : cases) {
        SCOPED_TRACE(c.ns);
        RouteContext ctx = createCanary(c.canary, c.ns);
        reconcileEach(GatewayApiRouter(), ctx, kSplits);
    }
    // The same route through the served v1beta1 version.
    RouteContext beta = createCanary(exampleCanary("stepped-canary.yaml"), "gw-v1beta1");
    reconcileEach(*makeRouter("gatewayapi:v1beta1"), beta, kSplits);
}

TEST_F(RouterCrdTest, IstioVirtualServicesValidate) {
    struct Case {
        std::string ns;
        json canary;
    };
    json richAb = richIstioCanary();
    richAb["spec"]["analysis"]["match"] = abMatch();
    json meshAb = exampleCanary("blue-green.yaml");
    meshAb["spec"]["analysis"]["match"] = json::parse(
        R"([{"headers": {"x-user": {"prefix": "qa-"}}, "sourceLabels": {"app": "qa"}}])");
    std::vector<Case> cases = {{"istio-canary", exampleCanary("canary.yaml")},
                               {"istio-bluegreen", exampleCanary("blue-green.yaml")},
                               {"istio-stepped", exampleCanary("stepped-canary.yaml")},
                               {"istio-rich", richIstioCanary()},
                               {"istio-rich-ab", richAb},
                               {"istio-mesh-ab", meshAb}};
    for (const Case& c : cases) {
        SCOPED_TRACE(c.ns);
        RouteContext ctx = createCanary(c.canary, c.ns);
        reconcileEach(IstioRouter(), ctx, kSplits);
    }
    // Flagger's API version, still served by Istio 1.29.
    RouteContext beta = createCanary(exampleCanary("canary.yaml"), "istio-v1beta1");
    reconcileEach(IstioRouter("networking.istio.io/v1beta1"), beta, kSplits);
}

TEST_F(RouterCrdTest, NginxCanaryIngress) {
    json canary = exampleCanary("canary.yaml");
    canary["spec"]["provider"] = "nginx";
    canary["spec"]["ingressRef"] = {
        {"apiVersion", "networking.k8s.io/v1"}, {"kind", "Ingress"}, {"name", "web"}};
    RouteContext ctx = createCanary(canary, "nginx");
    NginxRouter router;
    // The user's Ingress is missing: a RouterError that names it, nothing applied.
    try {
        reconcileRoutes(*client_, router, ctx, Weights{});
        FAIL() << "expected RouterError";
    } catch (const RouterError& error) {
        EXPECT_NE(std::string(error.what()).find("Ingress nginx/web"), std::string::npos)
            << error.what();
    }
    EXPECT_EQ(readLiveWeights(*client_, router, ctx), std::nullopt);

    server_->create(json::parse(R"({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
      "metadata": {"name": "web", "namespace": "nginx",
                   "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}},
      "spec": {"ingressClassName": "nginx", "rules": [{"host": "api.blessedhorizon.org",
        "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {
          "name": "campaign-service", "port": {"number": 80}}}}]}}]}})"));
    reconcileEach(router, ctx,
                  {Weights{}, Weights::forCanary(10), Weights::forCanary(60), Weights{}});
    json live = client_->get({"networking.k8s.io", "v1", "Ingress"}, "nginx", "web-canary");
    EXPECT_EQ(live["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
              "campaign-service-canary");
    json source = client_->get({"networking.k8s.io", "v1", "Ingress"}, "nginx", "web");
    EXPECT_EQ(source["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
              "campaign-service")
        << "the user's Ingress is only read";
}

TEST_F(RouterCrdTest, KubernetesBlueGreenSwitch) {
    RouteContext ctx = createCanary(exampleCanary("blue-green.yaml"), "k8s-bluegreen");
    KubernetesRouter router;
    EXPECT_EQ(readLiveWeights(*client_, router, ctx), std::nullopt);
    reconcileEach(router, ctx, {Weights{}, Weights::forCanary(100), Weights{}});
    json apex = client_->get(kService, "k8s-bluegreen", "ml-platform");
    EXPECT_EQ(apex["spec"]["selector"], json({{"app", "ml-platform-primary"}}));
    EXPECT_THROW(reconcileRoutes(*client_, router, ctx, Weights::forCanary(50)), RouterError);
}

// Proves the server really validates against the CRDs, and that the pruning check above would
// notice a field the schema does not know.
TEST_F(RouterCrdTest, NegativeControls) {
    RouteContext gw = createCanary(exampleCanary("stepped-canary.yaml"), "negative-gw");
    json route = withOwner(GatewayApiRouter().build(gw, Weights::forCanary(10))[0], gw);
    json badWeight = route;
    badWeight["spec"]["rules"][0]["backendRefs"][1]["weight"] = "abc";
    try {
        client_->apply(badWeight, forced());
        FAIL() << "weight \"abc\" accepted";
    } catch (const kube::ApiError& error) {
        EXPECT_TRUE(error.isInvalid()) << error.code() << " " << error.message();
        EXPECT_NE(error.message().find("weight"), std::string::npos) << error.message();
    }
    json badHost = route;
    badHost["spec"]["hostnames"] = {"not a hostname"};
    EXPECT_THROW(client_->apply(badHost, forced()), kube::ApiError);
    EXPECT_THROW(client_->get(kHttpRoute, "negative-gw", "bifrost-api"), kube::ApiError)
        << "nothing was stored";

    json unknown = route;
    unknown["spec"]["rules"][0]["weights"] = {{"primary", 90}};  // not a Gateway API field
    json stored = client_->apply(unknown, forced());
    std::string why;
    EXPECT_FALSE(containsAll(stored, unknown, "", why)) << "pruned field not noticed";
    EXPECT_NE(why.find("weights"), std::string::npos) << why;
    EXPECT_TRUE(containsAll(stored, route, "", why)) << why;

    json noPort = route;
    noPort["spec"]["rules"][0]["backendRefs"][0].erase("port");
    EXPECT_NE(joined(gatewayCelViolations(noPort)).find("Must have port"), std::string::npos);

    RouteContext istio = createCanary(exampleCanary("canary.yaml"), "negative-istio");
    json vs = withOwner(IstioRouter().build(istio, Weights::forCanary(10))[2], istio);
    ASSERT_EQ(vs["kind"], "VirtualService");
    vs["spec"]["http"][0]["route"][0]["weight"] = "abc";
    try {
        client_->apply(vs, forced());
        FAIL() << "weight \"abc\" accepted";
    } catch (const kube::ApiError& error) {
        EXPECT_TRUE(error.isInvalid()) << error.code() << " " << error.message();
    }
}

TEST_F(RouterCrdTest, OwnedByTheCanaryAndSelfHealed) {
    RouteContext ctx = createCanary(exampleCanary("stepped-canary.yaml"), "heal");
    GatewayApiRouter router;
    EXPECT_EQ(readLiveWeights(*client_, router, ctx), std::nullopt);
    reconcileRoutes(*client_, router, ctx, Weights::forCanary(20));

    // Someone edits the weights by hand (another field manager, as kubectl edit would).
    json live = client_->get(kHttpRoute, "heal", "bifrost-api");
    json rules = live["spec"]["rules"];
    rules[0]["backendRefs"][0]["weight"] = 50;
    rules[0]["backendRefs"][1]["weight"] = 50;
    client_->patch(kHttpRoute, "heal", "bifrost-api", kube::PatchType::Merge,
                   json{{"spec", {{"rules", rules}}}}.dump(), byHand());
    EXPECT_EQ(readLiveWeights(*client_, router, ctx), (Weights{50, 50, false})) << "drift seen";

    // And points the apex Service at the canary pods.
    client_->patch(kService, "heal", "bifrost-api", kube::PatchType::Merge,
                   R"({"spec":{"selector":{"app":"bifrost-api"}}})", byHand());

    ReconcileResult healed = reconcileRoutes(*client_, router, ctx, Weights::forCanary(20));
    EXPECT_EQ(healed.weights, Weights::forCanary(20));
    EXPECT_EQ(readLiveWeights(*client_, router, ctx), Weights::forCanary(20));
    EXPECT_EQ(client_->get(kService, "heal", "bifrost-api")["spec"]["selector"],
              json({{"app", "bifrost-api-primary"}}));

    // Deleting the Canary garbage-collects everything it owns.
    client_->remove(kCanary, "heal", ctx.canaryName, background());
    auto gone = [&](const kube::GroupVersionKind& gvk, const std::string& name) {
        return eventually([&] {
            try {
                client_->get(gvk, "heal", name);
                return false;
            } catch (const kube::ApiError& error) {
                return error.isNotFound();
            }
        });
    };
    EXPECT_TRUE(gone(kHttpRoute, "bifrost-api"));
    EXPECT_TRUE(gone(kService, "bifrost-api"));
    EXPECT_TRUE(gone(kService, "bifrost-api-primary"));
    EXPECT_TRUE(gone(kService, "bifrost-api-canary"));
}

TEST_F(RouterCrdTest, DryRunWritesNothing) {
    RouteContext ctx = createCanary(exampleCanary("canary.yaml"), "dry-run");
    IstioRouter router;
    ReconcileOptions options;
    options.dryRun = true;
    ReconcileResult result =
        reconcileRoutes(*client_, router, ctx, Weights::forCanary(10), options);
    EXPECT_EQ(result.weights, Weights::forCanary(10));
    EXPECT_EQ(readLiveWeights(*client_, router, ctx), std::nullopt);
}

}  // namespace
}  // namespace sluice::router
