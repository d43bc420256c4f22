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

}  // namespace
}  // namespace sluice::router
