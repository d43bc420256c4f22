// The routers of the provider table beyond Gateway API and Istio (SMI/Linkerd, Contour,
// Traefik, Gloo, Kuma, Skipper, APISIX, App Mesh) driven by the Canary controller against the
// in-process API server with each router's OFFICIAL CRDs installed (../shared/thirdparty-crds/):
// the objects are created at initialisation (the server validates them against the CRD's
// schema), the weights move during the analysis, a hand edit of the weights object is healed at
// the next iteration, failing metrics roll the canary back to 0 % with phase Failed, and a hand
// edit at rest is healed as well. At rest, every object a router owns (not only the weights
// object) is repaired when deleted or edited by hand, and an untouched Canary writes nothing
// (RoutersAtRestTest, also over Istio and Gateway API; StickyIdleTest mid-analysis).
//
// Every one of these routers splits by weight (checkWeights accepts any percentages), Skipper
// included, so every provider runs the same weighted scenario. The metric values come from the
// scripted provider's default answer rather than the harness's healthyMetrics(): that one tells
// the queries apart by substrings ("_bucket", "!~") that Traefik's and Skipper's success-rate
// queries share with the latency ones, and Linkerd's success rate has no "!~".
#include <algorithm>
#include <cmath>

#include "harness.h"

namespace sluice::canarytest {
namespace {

using canaryengine::MetricResult;

struct Ref {
    std::string apiVersion;
    std::string kind;
    std::string name;
};

// A hand edit at rest of a field the router sets: the value at `pointer` replaced by `value`.
struct RestEdit {
    Ref object;
    std::string pointer;
    json value;
};

// One provider: the CRDs it needs, the Canary fields it needs, the objects the router writes,
// how to read (primary, canary) from its weights object, and a hand edit of that object.
struct RouterCase {
    std::string label;  // the test's name
    std::string provider;
    std::vector<std::string> crds;  // relative to the shared folder
    std::vector<kube::GroupVersionKind> served;
    std::vector<Ref> objects;  // everything the router writes, the weights object first
    // (primary, canary) of the live weights object; -1 for a side it does not route to.
    std::function<std::pair<int, int>(const json& live)> weights;
    // A JSON patch applied by another field manager (kubectl edit) while the canary is held at
    // 50/50; empty: the weights object is deleted instead.
    std::string handEdit;
    std::string handEditText;  // what the edit does, for the trace
    // A JSON patch applied by hand after the rollback, at rest (want 100/0), that sends traffic
    // to the canary as the proxy reads it (a weight left out means the proxy's default).
    std::string restEdit;
    // A needle of the provider's built-in request-success-rate query (its observer).
    std::string queryNeedle;
    // Canary fields the router needs (ingressRef, routeRef) and the objects it reads.
    std::function<void(json& canary)> configure = nullptr;
    std::function<std::vector<json>()> inputs = nullptr;
    // Checks of the weights object's other fields that follow the canary's weight.
    std::function<void(const json& live, int canaryWeight)> shape = nullptr;
    // The at-rest repair test: more Canary fields (so the router writes the edited fields) and
    // hand edits of fields the router sets, in its objects other than the weights.
    std::function<void(json& canary)> restConfigure = nullptr;
    std::vector<RestEdit> restEdits = {};
};

void PrintTo(const RouterCase& c, std::ostream* os) {
    *os << c.label;
}

// The weight of the entry of `list` whose `key` (a JSON pointer) is `name`; -1 when none is,
// `missingWeight` (the proxy's default) when it has no weight.
int weightOf(const json& list, const std::string& key, const std::string& name,
             int missingWeight = 0) {
    if (!list.is_array()) return -1;
    const json::json_pointer pointer(key);
    for (const json& entry : list) {
        if (!entry.contains(pointer) || entry.at(pointer) != name) continue;
        const json& weight = entry.value("weight", json());
        if (weight.is_number()) return weight.get<int>();
        if (weight.is_string()) {  // an SMI v1alpha1 quantity: "100", "500m"
            std::string quantity = weight.get<std::string>();
            const bool milli = !quantity.empty() && quantity.back() == 'm';
            if (milli) quantity.pop_back();
            return static_cast<int>(std::lround(std::stod(quantity) / (milli ? 1000 : 1)));
        }
        return missingWeight;
    }
    return -1;
}

json at(const json& object, const std::string& pointer) {
    const json::json_pointer p(pointer);
    return object.contains(p) ? object.at(p) : json();
}

std::vector<RouterCase> routerCases() {
    const std::string smiCrd = "thirdparty-crds/linkerd-smi-v0.2.7/trafficsplit-crd.yaml";
    const kube::GroupVersionKind split1{"split.smi-spec.io", "v1alpha1", "TrafficSplit"};
    const kube::GroupVersionKind split2{"split.smi-spec.io", "v1alpha2", "TrafficSplit"};
    auto trafficSplit = [](const json& live) {
        const json backends = at(live, "/spec/backends");
        return std::make_pair(weightOf(backends, "/service", "podinfo-primary"),
                              weightOf(backends, "/service", "podinfo-canary"));
    };
    auto splitShape = [](const json& live, int) {
        EXPECT_EQ(at(live, "/spec/service"), "podinfo");  // the apex Service is the root
    };
    // Backends are [canary, primary] (Flagger's order).
    const std::string smiWeightsBack = R"([
        {"op": "replace", "path": "/spec/backends/0/weight", "value": 0},
        {"op": "replace", "path": "/spec/backends/1/weight", "value": 100}])";

    const std::string appMesh = "thirdparty-crds/aws-app-mesh-controller-v1.13.3/appmesh.k8s.aws_";
    const std::string apisixVersion = "apisix.apache.org/v2";
    const std::string appMeshVersion = "appmesh.k8s.aws/v1beta2";
    return {
        {"linkerd",
         "linkerd",
         {smiCrd},
         {split1, split2},
         {{"split.smi-spec.io/v1alpha1", "TrafficSplit", "podinfo"}},
         trafficSplit,
         R"([{"op": "remove", "path": "/spec/backends/0"}])",
         "the canary backend deleted",
         R"([{"op": "replace", "path": "/spec/backends/0/weight", "value": 100}])",
         "response_total{namespace=\"test\", deployment=~\"podinfo\"",
         nullptr,
         nullptr,
         splitShape},
        {"smi_v1alpha1",
         "smi:v1alpha1",
         {smiCrd},
         {split1, split2},
         {{"split.smi-spec.io/v1alpha1", "TrafficSplit", "podinfo"}},
         trafficSplit,
         smiWeightsBack,
         "the weights set back to 100/0",
         R"([{"op": "replace", "path": "/spec/backends/0/weight", "value": "500m"}])",
         "istio_requests_total",
         nullptr,
         nullptr,
         splitShape},
        {"smi_v1alpha2",
         "smi:v1alpha2",
         {smiCrd},
         {split1, split2},
         {{"split.smi-spec.io/v1alpha2", "TrafficSplit", "podinfo"}},
         trafficSplit,
         smiWeightsBack,
         "the weights set back to 100/0",
         R"([{"op": "replace", "path": "/spec/backends/0/weight", "value": 10}])",
         "istio_requests_total",
         nullptr,
         nullptr,
         splitShape},
        {"contour",
         "contour",
         {"thirdparty-crds/contour-v1.33.6/01-crds.yaml"},
         {{"projectcontour.io", "v1", "HTTPProxy"}},
         {{"projectcontour.io/v1", "HTTPProxy", "podinfo"}},
         [](const json& live) {
             const json services = at(live, "/spec/routes/0/services");
             return std::make_pair(weightOf(services, "/name", "podinfo-primary"),
                                   weightOf(services, "/name", "podinfo-canary"));
         },
         // services are [primary, canary]
         R"([{"op": "replace", "path": "/spec/routes/0/services/0/weight", "value": 100},
             {"op": "replace", "path": "/spec/routes/0/services/1/weight", "value": 0}])",
         "the weights set back to 100/0",
         R"([{"op": "replace", "path": "/spec/routes/0/services/1/weight", "value": 10}])",
         "envoy_cluster_name=~\"test_podinfo-canary_"},
        {"traefik",
         "traefik",
         {"thirdparty-crds/traefik-helm-chart-v41.3.0/traefik.io_traefikservices.yaml"},
         {{"traefik.io", "v1alpha1", "TraefikService"}},
         {{"traefik.io/v1alpha1", "TraefikService", "podinfo"}},
         [](const json& live) {
             const json services = at(live, "/spec/weighted/services");
             // Traefik weighs a service without a weight 1.
             const int canary = weightOf(services, "/name", "podinfo-canary", 1);
             // The canary leaves the round robin while it gets no traffic.
             return std::make_pair(weightOf(services, "/name", "podinfo-primary", 1),
                                   canary < 0 && services.is_array() ? 0 : canary);
         },
         R"([{"op": "replace", "path": "/spec/weighted/services", "value": [
               {"name": "podinfo-primary", "namespace": "test", "port": 80, "weight": 100}]}])",
         "the canary service deleted, the primary set back to 100",
         R"([{"op": "add", "path": "/spec/weighted/services/-",
              "value": {"name": "podinfo-canary", "namespace": "test", "port": 80}}])",
         "traefik_service_request_duration_seconds_bucket{service=~\"test-podinfo-canary-",
         nullptr,
         nullptr,
         [](const json& live, int canaryWeight) {
             // The canary is in the round robin only while it has a weight.
             EXPECT_EQ(at(live, "/spec/weighted/services").size(), canaryWeight == 0 ? 1u : 2u);
         }},
        {"gloo",
         "gloo",
         {"thirdparty-crds/gloo-v1.22.1/gateway.solo.io_v1_RouteTable.yaml",
          "thirdparty-crds/gloo-v1.22.1/gloo.solo.io_v1_Upstream.yaml"},
         {{"gateway.solo.io", "v1", "RouteTable"}, {"gloo.solo.io", "v1", "Upstream"}},
         {{"gateway.solo.io/v1", "RouteTable", "podinfo"},
          {"gloo.solo.io/v1", "Upstream", "test-podinfo-primaryupstream-80"},
          {"gloo.solo.io/v1", "Upstream", "test-podinfo-canaryupstream-80"}},
         [](const json& live) {
             const json d = at(live, "/spec/routes/0/routeAction/multi/destinations");
             return std::make_pair(
                 weightOf(d, "/destination/upstream/name", "test-podinfo-primaryupstream-80"),
                 weightOf(d, "/destination/upstream/name", "test-podinfo-canaryupstream-80"));
         },
         // destinations are [primary, canary]
         R"([{"op": "replace", "path": "/spec/routes/0/routeAction/multi/destinations/0/weight",
              "value": 100},
             {"op": "replace", "path": "/spec/routes/0/routeAction/multi/destinations/1/weight",
              "value": 0}])",
         "the weights set back to 100/0",
         R"([{"op": "replace", "path": "/spec/routes/0/routeAction/multi/destinations/1/weight",
              "value": 10}])",
         "test-podinfo-canaryupstream-[0-9]+_test"},
        {"kuma",
         "kuma",
         {"thirdparty-crds/kuma-v2.14.3/kuma.io_meshhttproutes.yaml"},
         {{"kuma.io", "v1alpha1", "MeshHTTPRoute"}},
         {{"kuma.io/v1alpha1", "MeshHTTPRoute", "podinfo"}},
         [](const json& live) {
             const json refs = at(live, "/spec/to/0/rules/0/default/backendRefs");
             // Kuma's default weight is 1.
             return std::make_pair(weightOf(refs, "/name", "podinfo-primary_test_svc_80", 1),
                                   weightOf(refs, "/name", "podinfo-canary_test_svc_80", 1));
         },
         // backendRefs are [primary, canary]
         R"([{"op": "remove", "path": "/spec/to/0/rules/0/default/backendRefs/1"}])",
         "the canary backendRef deleted",
         R"([{"op": "remove", "path": "/spec/to/0/rules/0/default/backendRefs/1/weight"}])",
         "service=~\"podinfo-canary_test_svc_"},
        {"skipper",
         "skipper",
         {},  // a core Ingress: the server's own validation
         {},
         {{"networking.k8s.io/v1", "Ingress", "web-canary"}},
         [](const json& live) {
             const json annotation = at(live, "/metadata/annotations/zalando.org~1backend-weights");
             const json weights = annotation.is_string()
                                      ? json::parse(annotation.get<std::string>(), nullptr, false)
                                      : json();
             auto side = [&](const char* service) {
                 return weights.is_object() && weights.contains(service)
                            ? weights[service].get<int>()
                            : -1;
             };
             return std::make_pair(side("podinfo-primary"), side("podinfo-canary"));
         },
         R"([{"op": "replace", "path": "/metadata/annotations/zalando.org~1backend-weights",
              "value": "{\"podinfo-canary\":0,\"podinfo-primary\":100}"}])",
         "the backend-weights annotation set back to 100/0",
         R"([{"op": "remove", "path": "/metadata/annotations/zalando.org~1backend-weights"}])",
         "skipper_response_duration_seconds_bucket{route=~\"kube(ew)?_test__web_canary__",
         [](json& canary) {
             canary["spec"]["ingressRef"] = {
                 {"apiVersion", "networking.k8s.io/v1"}, {"kind", "Ingress"}, {"name", "web"}};
         },
         [] {
             return std::vector<json>{json::parse(R"json({"apiVersion": "networking.k8s.io/v1",
               "kind": "Ingress", "metadata": {"name": "web", "namespace": "test",
                 "annotations": {"zalando.org/skipper-predicate": "Header(\"X-Env\", \"prod\")"}},
               "spec": {"ingressClassName": "skipper", "rules": [{"host": "app.example.org",
                 "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {
                   "name": "podinfo", "port": {"number": 80}}}}]}}]}})json")};
         },
         [](const json& live, int canaryWeight) {
             // Weight(100) puts it above the user's Ingress, False() switches it off at 0 %;
             // the user's own predicate is kept.
             const std::string user = "Header(\"X-Env\", \"prod\")";
             EXPECT_EQ(
                 at(live, "/metadata/annotations/zalando.org~1skipper-predicate"),
                 (canaryWeight == 0 ? "False() && " : "") + std::string("Weight(100) && ") + user);
             const json paths = at(live, "/spec/rules/0/http/paths");
             ASSERT_EQ(paths.size(), 2u);
             EXPECT_EQ(at(paths[0], "/backend/service/name"), "podinfo-primary");
             EXPECT_EQ(at(paths[1], "/backend/service/name"), "podinfo-canary");
         }},
        {"apisix",
         "apisix",
         {"thirdparty-crds/apisix-ingress-controller-2.2.0/apisix.apache.org_apisixroutes.yaml"},
         {{"apisix.apache.org", "v2", "ApisixRoute"}},
         {{apisixVersion, "ApisixRoute", "web-canary"}},
         [](const json& live) {
             const json backends = at(live, "/spec/http/0/backends");
             // APISIX weighs a backend without a weight 100 (apiv2.DefaultWeight).
             return std::make_pair(weightOf(backends, "/serviceName", "podinfo-primary", 100),
                                   weightOf(backends, "/serviceName", "podinfo-canary", 100));
         },
         // backends are [primary, canary]
         R"([{"op": "replace", "path": "/spec/http/0/backends/0/weight", "value": 100},
             {"op": "replace", "path": "/spec/http/0/backends/1/weight", "value": 0}])",
         "the weights set back to 100/0",
         R"([{"op": "remove", "path": "/spec/http/0/backends/1/weight"}])",
         "apisix_http_status{route=~\"test_web-canary_.+\"",
         [apisixVersion](json& canary) {
             canary["spec"]["routeRef"] = {
                 {"apiVersion", apisixVersion}, {"kind", "ApisixRoute"}, {"name", "web"}};
         },
         [] {
             return std::vector<json>{json::parse(R"json({"apiVersion": "apisix.apache.org/v2",
               "kind": "ApisixRoute", "metadata": {"name": "web", "namespace": "test"},
               "spec": {"ingressClassName": "apisix", "http": [{"name": "main",
                 "match": {"hosts": ["app.example.org"], "paths": ["/*"]},
                 "backends": [{"serviceName": "podinfo", "servicePort": 80}]}]}})json")};
         },
         [](const json& live, int) {
             // A copy of the user's route above it, with both backends on its port.
             EXPECT_EQ(at(live, "/spec/http/0/priority"), 10000);
             EXPECT_EQ(at(live, "/spec/http/0/match/hosts/0"), "app.example.org");
             EXPECT_EQ(at(live, "/spec/http/0/backends/1/servicePort"), 80);
         }},
        {"appmesh",
         "appmesh:v1beta2",
         {appMesh + "virtualnodes.yaml", appMesh + "virtualrouters.yaml",
          appMesh + "virtualservices.yaml"},
         {{"appmesh.k8s.aws", "v1beta2", "VirtualRouter"},
          {"appmesh.k8s.aws", "v1beta2", "VirtualNode"},
          {"appmesh.k8s.aws", "v1beta2", "VirtualService"}},
         {{appMeshVersion, "VirtualRouter", "podinfo"},
          {appMeshVersion, "VirtualNode", "podinfo-primary"},
          {appMeshVersion, "VirtualNode", "podinfo-canary"},
          {appMeshVersion, "VirtualService", "podinfo"},
          {appMeshVersion, "VirtualRouter", "podinfo-canary"},
          {appMeshVersion, "VirtualService", "podinfo-canary"}},
         [](const json& live) {
             const json targets = at(live, "/spec/routes/0/httpRoute/action/weightedTargets");
             return std::make_pair(weightOf(targets, "/virtualNodeRef/name", "podinfo-primary"),
                                   weightOf(targets, "/virtualNodeRef/name", "podinfo-canary"));
         },
         "",
         "the VirtualRouter deleted",
         R"([{"op": "replace",
              "path": "/spec/routes/0/httpRoute/action/weightedTargets/1/weight", "value": 10}])",
         "envoy_cluster_upstream_rq{kubernetes_namespace=\"test\", "
         "kubernetes_pod_name=~\"podinfo-"},
    };
}

// The providers of routerCases() plus Istio and Gateway API (their CRDs are the harness's),
// with the hand edits of the at-rest repair test: a field of each provider's secondary objects
// (Contour's timeout, Istio's DestinationRule, App Mesh's VirtualNode listener, APISIX's
// priority, Skipper's predicate) and, for every provider, the primary Service's selector.
std::vector<RouterCase> restCases() {
    std::vector<RouterCase> cases = routerCases();
    RouterCase istio;
    istio.label = "istio";
    istio.provider = "istio";
    istio.served = {{"networking.istio.io", "v1", "VirtualService"},
                    {"networking.istio.io", "v1", "DestinationRule"}};
    istio.objects = {{"networking.istio.io/v1", "VirtualService", "podinfo"},
                     {"networking.istio.io/v1", "DestinationRule", "podinfo-primary"},
                     {"networking.istio.io/v1", "DestinationRule", "podinfo-canary"}};
    istio.weights = [](const json& live) {
        const json route = at(live, "/spec/http/0/route");
        return std::make_pair(weightOf(route, "/destination/host", "podinfo-primary"),
                              weightOf(route, "/destination/host", "podinfo-canary"));
    };
    istio.restConfigure = [](json& canary) {
        canary["spec"]["service"]["trafficPolicy"] = {{"tls", {{"mode", "ISTIO_MUTUAL"}}}};
    };
    istio.restEdits = {{{"networking.istio.io/v1", "DestinationRule", "podinfo-canary"},
                        "/spec/trafficPolicy/tls/mode",
                        "DISABLE"}};
    cases.push_back(istio);

    RouterCase gateway;
    gateway.label = "gatewayapi";
    gateway.provider = "gatewayapi:v1";
    gateway.served = {{"gateway.networking.k8s.io", "v1", "HTTPRoute"}};
    gateway.objects = {{"gateway.networking.k8s.io/v1", "HTTPRoute", "podinfo"}};
    gateway.weights = [](const json& live) {
        const json refs = at(live, "/spec/rules/0/backendRefs");
        return std::make_pair(weightOf(refs, "/name", "podinfo-primary", 1),
                              weightOf(refs, "/name", "podinfo-canary", 1));
    };
    gateway.configure = [](json& canary) {
        canary["spec"]["service"]["gatewayRefs"] =
            json::array({{{"name", "public"}, {"namespace", kNs}}});
    };
    gateway.restEdits = {{{"gateway.networking.k8s.io/v1", "HTTPRoute", "podinfo"},
                          "/spec/parentRefs/0/name",
                          "private"}};
    cases.push_back(gateway);

    const std::string appMeshVersion = "appmesh.k8s.aws/v1beta2";
    for (RouterCase& c : cases) {
        if (c.label == "contour") {
            c.restConfigure = [](json& canary) { canary["spec"]["service"]["timeout"] = "15s"; };
            c.restEdits = {{{"projectcontour.io/v1", "HTTPProxy", "podinfo"},
                            "/spec/routes/0/timeoutPolicy/response",
                            "1s"}};
        } else if (c.label == "appmesh") {
            c.restEdits = {{{appMeshVersion, "VirtualNode", "podinfo-canary"},
                            "/spec/listeners/0/portMapping/port",
                            1234}};
        } else if (c.label == "apisix") {
            c.restEdits = {{{"apisix.apache.org/v2", "ApisixRoute", "web-canary"},
                            "/spec/http/0/priority",
                            1}};
        } else if (c.label == "skipper") {
            c.restEdits = {{{"networking.k8s.io/v1", "Ingress", "web-canary"},
                            "/metadata/annotations/zalando.org~1skipper-predicate",
                            "True()"}};
        }
        // The primary's Service sent to the canary's pods.
        c.restEdits.push_back(
            {{"v1", "Service", "podinfo-primary"}, "/spec/selector/app", "podinfo"});
    }
    return cases;
}

class RoutersTest : public CanaryControllerTest, public ::testing::WithParamInterface<RouterCase> {
  protected:
    void SetUp() override {
        for (const std::string& crd : GetParam().crds) SLUICE_SKIP_WITHOUT_SHARED(crd);
        CanaryControllerTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        for (const std::string& crd : GetParam().crds) server_->createFromFile(sharedPath(crd));
        for (const kube::GroupVersionKind& gvk : GetParam().served)
            ASSERT_NO_FATAL_FAILURE(waitUntilServed(gvk));
    }

    // The harness's canary on this provider: steps of 25 up to 50, then a confirm-promotion
    // gate (closed until the test opens it) holds it at 50/50 while the metrics keep running;
    // one failed check rolls it back. request-success-rate only: its built-in query differs by
    // provider and the scripted provider answers every query with the default value.
    json routerCanary() const {
        json canary = gatewayCanary(
            "podinfo", "podinfo",
            json::array(
                {{{"name", "gate"}, {"type", "confirm-promotion"}, {"url", hooks_.url("/gate")}}}));
        canary["spec"]["provider"] = GetParam().provider;
        canary["spec"]["service"].erase("gatewayRefs");
        json& analysis = canary["spec"]["analysis"];
        analysis["threshold"] = 1;
        analysis["metrics"] =
            json::array({{{"name", "request-success-rate"}, {"thresholdRange", {{"min", 99}}}}});
        if (GetParam().configure) GetParam().configure(canary);
        return canary;
    }

    // Successful reconciles of the canary so far.
    size_t reconciles() {
        size_t n = 0;
        for (const auto& r : records()) n += r.succeeded && r.key == kNs + "/podinfo" ? 1 : 0;
        return n;
    }
    uint64_t applies() {
        auto counts = server_->requestCounts();
        return counts.count("apply") ? counts["apply"] : 0;
    }
    // The server-side applies (how the controller writes every routing object) made while the
    // canary is reconciled `n` more times.
    uint64_t appliesOver(size_t n) {
        const uint64_t before = applies();
        const size_t from = reconciles();
        EXPECT_TRUE(eventually([&] { return reconciles() >= from + n; }));
        return applies() - before;
    }

    // (primary, canary) of the live weights object; (-1, -1) when it does not exist.
    std::pair<int, int> liveWeights() {
        const Ref& ref = GetParam().objects.front();
        auto live = object(ref.apiVersion, ref.kind, ref.name);
        if (!live) return {-1, -1};
        return GetParam().weights(*live);
    }

    // RoutingRestored Events, counting repeats.
    int restoredCount() {
        int n = 0;
        for (const json& e : events("RoutingRestored")) n += e.value("count", 1);
        return n;
    }

    // The shape checks of the weights object at this canary weight.
    void checkShape(int canaryWeight) {
        if (!GetParam().shape) return;
        SCOPED_TRACE("canary weight " + std::to_string(canaryWeight));
        const Ref& ref = GetParam().objects.front();
        auto live = object(ref.apiVersion, ref.kind, ref.name);
        ASSERT_TRUE(live);
        GetParam().shape(*live, canaryWeight);
    }

    void successRate(double value) { metrics_->setDefault(MetricResult::measured(value)); }
};

TEST_P(RoutersTest, InitialiseAdvanceHealAndRollBack) {
    const RouterCase& c = GetParam();
    successRate(100);
    hooks_.setStatus("/gate", 403);
    startController();
    if (c.inputs) {
        for (const json& input : c.inputs()) server_->create(input);
    }

    // 1. Initialised: the primary, the three Services and the router's objects, accepted by
    // the server under the provider's CRD and owned by the Canary; all traffic on the primary.
    ASSERT_NO_FATAL_FAILURE(initialise(routerCanary(), "podinfo"));
    const std::string uid = canaryObject("podinfo")["metadata"].value("uid", "?");
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:1.0");
    for (const char* svc : {"podinfo", "podinfo-primary", "podinfo-canary"})
        EXPECT_TRUE(object("v1", "Service", svc)) << svc;
    for (const Ref& ref : c.objects) {
        auto live = object(ref.apiVersion, ref.kind, ref.name);
        ASSERT_TRUE(live) << ref.kind << " " << ref.name;
        const json owners = (*live)["metadata"].value("ownerReferences", json::array());
        ASSERT_EQ(owners.size(), 1u) << ref.kind << " " << ref.name;
        EXPECT_EQ(owners[0].value("kind", ""), "Canary");
        EXPECT_EQ(owners[0].value("uid", ""), uid);
    }
    EXPECT_EQ(liveWeights(), std::make_pair(100, 0));
    checkShape(0);
    EXPECT_EQ(controller_->stats().errors, 0u);

    // 2. A new revision: the weights object carries each step, then holds at 50/50 behind the
    // closed gate.
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return liveWeights() == std::make_pair(75, 25); }))
        << status("podinfo").dump(2);
    ASSERT_TRUE(eventually([&] {
        return phase("podinfo") == "WaitingPromotion" && liveWeights() == std::make_pair(50, 50);
    })) << status("podinfo").dump(2);
    EXPECT_EQ(status("podinfo").value("canaryWeight", -1), 50);
    checkShape(50);
    // The analysis ran the provider's own built-in query.
    const std::vector<std::string> queries = metrics_->queries();
    EXPECT_TRUE(std::any_of(queries.begin(), queries.end(), [&](const std::string& q) {
        return q.find(c.queryNeedle) != std::string::npos;
    })) << (queries.empty() ? std::string("no query") : queries.back());

    // 3. A hand edit of the weights object is healed at the next iteration.
    SCOPED_TRACE("hand edit: " + c.handEditText);
    EXPECT_TRUE(events("RoutingRestored").empty());
    const Ref& weightsRef = c.objects.front();
    const kube::GroupVersionKind weightsGvk =
        kube::GroupVersionKind::fromApiVersion(weightsRef.apiVersion, weightsRef.kind);
    if (c.handEdit.empty()) {
        client_->remove(weightsGvk, kNs, weightsRef.name);
    } else {
        kube::PatchOptions byHand;
        byHand.fieldManager = "kubectl-edit";
        client_->patch(weightsGvk, kNs, weightsRef.name, kube::PatchType::JsonPatch, c.handEdit,
                       byHand);
    }
    ASSERT_TRUE(eventually([&] { return !events("RoutingRestored").empty(); }))
        << status("podinfo").dump(2);
    EXPECT_TRUE(
        hasEventContaining("RoutingRestored", "Routing restored to primary=50 canary=50 (found "));
    EXPECT_TRUE(eventually([&] { return liveWeights() == std::make_pair(50, 50); }));
    for (const Ref& ref : c.objects)
        EXPECT_TRUE(object(ref.apiVersion, ref.kind, ref.name)) << ref.kind << " " << ref.name;
    EXPECT_EQ(phase("podinfo"), "WaitingPromotion");

    // 4. Failing metrics: rolled back, all traffic on the untouched primary.
    successRate(50);
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Failed"; }))
        << status("podinfo").dump(2);
    EXPECT_EQ(status("podinfo").value("canaryWeight", -1), 0);
    EXPECT_EQ(liveWeights(), std::make_pair(100, 0));
    checkShape(0);
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:1.0");
    EXPECT_TRUE(eventually([&] { return replicasOf("podinfo") == 0; }));
    EXPECT_TRUE(hasEventContaining("Halt", "request-success-rate 50 < 99"));

    // 5. At rest, a hand edit that gives the canary traffic as the proxy reads the object (for
    // APISIX and Traefik: a weight left out, which they read as 100 and 1) is healed too.
    {
        SCOPED_TRACE("hand edit at rest: " + c.restEdit);
        const int restoredBefore = restoredCount();
        kube::PatchOptions byHand;
        byHand.fieldManager = "kubectl-edit";
        client_->patch(weightsGvk, kNs, weightsRef.name, kube::PatchType::JsonPatch, c.restEdit,
                       byHand);
        ASSERT_TRUE(eventually([&] { return restoredCount() > restoredBefore; }))
            << "not healed: "
            << object(weightsRef.apiVersion, weightsRef.kind, weightsRef.name)
                   .value_or(json())
                   .dump();
        EXPECT_TRUE(eventually([&] { return liveWeights() == std::make_pair(100, 0); }));
        checkShape(0);
        EXPECT_EQ(phase("podinfo"), "Failed");
    }
    EXPECT_EQ(controller_->stats().errors, 0u);
}

INSTANTIATE_TEST_SUITE_P(Providers, RoutersTest, ::testing::ValuesIn(routerCases()),
                         [](const ::testing::TestParamInfo<RouterCase>& info) {
                             return info.param.label;
                         });

// At rest (Initialized, 100/0), as Flagger reconciles its router objects on every loop: an
// untouched Canary writes none of its objects, any object the router owns that is deleted by
// hand is re-created, and a hand edit of a field the router sets in any of them (not only the
// weights) is taken back, without moving the weights or the phase.
class RoutersAtRestTest : public RoutersTest {};

TEST_P(RoutersAtRestTest, EveryRouterObjectIsRepairedAndAnIdleCanaryWritesNothing) {
    const RouterCase& c = GetParam();
    successRate(100);
    startController();
    if (c.inputs) {
        for (const json& input : c.inputs()) server_->create(input);
    }
    json canary = routerCanary();
    if (c.restConfigure) c.restConfigure(canary);
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    ASSERT_TRUE(eventually([&] { return liveWeights() == std::make_pair(100, 0); }));

    // 1. Untouched: no writes to the routing objects over a few reconciles.
    EXPECT_EQ(appliesOver(4), 0u) << nlohmann::json(server_->requestCounts()).dump();
    EXPECT_EQ(restoredCount(), 0);

    auto atRest = [&] {
        EXPECT_EQ(phase("podinfo"), "Initialized");
        EXPECT_EQ(status("podinfo").value("canaryWeight", -1), 0);
        EXPECT_EQ(liveWeights(), std::make_pair(100, 0));
    };

    // 2. Each object the router owns, deleted by hand, is re-created (with the Services).
    std::vector<Ref> owned = c.objects;
    owned.push_back({"v1", "Service", "podinfo-canary"});
    for (const Ref& ref : owned) {
        SCOPED_TRACE("deleted: " + ref.kind + " " + ref.name);
        const int before = restoredCount();
        client_->remove(kube::GroupVersionKind::fromApiVersion(ref.apiVersion, ref.kind), kNs,
                        ref.name);
        ASSERT_TRUE(eventually([&] {
            return object(ref.apiVersion, ref.kind, ref.name).has_value() &&
                   restoredCount() > before;
        }));
        EXPECT_TRUE(hasEventContaining(
            "RoutingRestored", "Routing restored to primary=100 canary=0 (found " + ref.kind + " " +
                                   kNs + "/" + ref.name + " missing"));
        atRest();
    }

    // 3. A field the router sets, changed by hand, is set back.
    for (const RestEdit& edit : c.restEdits) {
        SCOPED_TRACE("edited: " + edit.object.kind + " " + edit.object.name + " " + edit.pointer);
        auto live = object(edit.object.apiVersion, edit.object.kind, edit.object.name);
        ASSERT_TRUE(live);
        const json original = at(*live, edit.pointer);
        ASSERT_FALSE(original.is_null()) << live->dump();
        ASSERT_NE(original, edit.value);
        const int before = restoredCount();
        kube::PatchOptions byHand;
        byHand.fieldManager = "kubectl-edit";
        const json patch =
            json::array({{{"op", "replace"}, {"path", edit.pointer}, {"value", edit.value}}});
        client_->patch(
            kube::GroupVersionKind::fromApiVersion(edit.object.apiVersion, edit.object.kind), kNs,
            edit.object.name, kube::PatchType::JsonPatch, patch.dump(), byHand);
        ASSERT_TRUE(eventually([&] {
            auto now = object(edit.object.apiVersion, edit.object.kind, edit.object.name);
            return now && at(*now, edit.pointer) == original && restoredCount() > before;
        })) << object(edit.object.apiVersion, edit.object.kind, edit.object.name)
                   .value_or(json())
                   .dump();
        EXPECT_TRUE(hasEventContaining(
            "RoutingRestored", edit.object.kind + " " + kNs + "/" + edit.object.name + " with "));
        atRest();
    }

    // 4. Repaired, it is idle again.
    EXPECT_TRUE(eventually([&] { return appliesOver(2) == 0u; }));
    EXPECT_EQ(appliesOver(3), 0u);
    EXPECT_EQ(controller_->stats().errors, 0u);
}

INSTANTIATE_TEST_SUITE_P(Providers, RoutersAtRestTest, ::testing::ValuesIn(restCases()),
                         [](const ::testing::TestParamInfo<RouterCase>& info) {
                             return info.param.label;
                         });

// Between the steps of an analysis the routes are compared too, and a sticky route's primary
// cookie (kept in no status field, a new one at each weight change) is the live route's: held
// at 50/50 behind a closed gate, a Canary with session affinity writes none of its objects.
class StickyIdleTest : public CanaryControllerTest {
  protected:
    uint64_t applies() {
        auto counts = server_->requestCounts();
        return counts.count("apply") ? counts["apply"] : 0;
    }
    size_t reconciles() {
        size_t n = 0;
        for (const auto& r : records()) n += r.succeeded && r.key == kNs + "/podinfo" ? 1 : 0;
        return n;
    }

    void heldWithoutWrites(const std::string& provider) {
        healthyMetrics();
        hooks_.setStatus("/gate", 403);
        startController();
        json canary = gatewayCanary(
            "podinfo", "podinfo",
            json::array(
                {{{"name", "gate"}, {"type", "confirm-promotion"}, {"url", hooks_.url("/gate")}}}));
        canary["spec"]["provider"] = provider;
        if (provider == "istio") canary["spec"]["service"].erase("gatewayRefs");
        canary["spec"]["analysis"]["sessionAffinity"] = {{"cookieName", "flagger-cookie"},
                                                         {"primaryCookieName", "flagger-primary"}};
        ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
        setImage("podinfo", "example/app:2.0");
        ASSERT_TRUE(eventually([&] {
            return phase("podinfo") == "WaitingPromotion" &&
                   status("podinfo").value("canaryWeight", -1) == 50;
        })) << status("podinfo").dump(2);
        // The reconcile that set 50/50 has finished.
        size_t from = reconciles();
        ASSERT_TRUE(eventually([&] { return reconciles() >= from + 2; }));
        const uint64_t before = applies();
        from = reconciles();
        ASSERT_TRUE(eventually([&] { return reconciles() >= from + 4; }));
        EXPECT_EQ(applies() - before, 0u) << nlohmann::json(server_->requestCounts()).dump();
        EXPECT_TRUE(events("RoutingRestored").empty());
        EXPECT_EQ(phase("podinfo"), "WaitingPromotion");
        EXPECT_EQ(controller_->stats().errors, 0u);
    }
};

TEST_F(StickyIdleTest, IstioHeldAtAStepWritesNothing) {
    heldWithoutWrites("istio");
}

TEST_F(StickyIdleTest, GatewayApiHeldAtAStepWritesNothing) {
    heldWithoutWrites("gatewayapi:v1");
}

}  // namespace
}  // namespace sluice::canarytest
