// The pure parts of healing routes at rest (src/canarycontroller/heal.h): what counts as a
// difference between a generated routing object and the live one, and the live primary cookie.
#include "heal.h"

#include <gtest/gtest.h>

namespace sluice::canarycontroller::detail {
namespace {

using nlohmann::json;

json destinationRule() {
    return json::parse(R"({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
      "metadata": {"name": "podinfo-canary", "namespace": "test",
                   "ownerReferences": [{"apiVersion": "sluice.io/v1alpha1", "kind": "Canary",
                     "name": "podinfo", "uid": "u1", "controller": true}]},
      "spec": {"host": "podinfo-canary", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}})");
}

TEST(RouteObjectDrift, OnlyTheFieldsTheRouterSetsCount) {
    const json desired = destinationRule();
    EXPECT_EQ(routeObjectDrift(desired, nullptr), "missing");
    json live = desired;
    EXPECT_EQ(routeObjectDrift(desired, &live), "");
    // What the server and other controllers add is not a difference.
    live["metadata"]["uid"] = "x";
    live["metadata"]["resourceVersion"] = "12";
    live["metadata"]["labels"] = {{"team", "a"}};
    live["metadata"]["ownerReferences"].push_back(
        {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "other"}, {"uid", "u2"}});
    live["spec"]["trafficPolicy"]["loadBalancer"] = {{"simple", "ROUND_ROBIN"}};
    live["status"] = {{"observedGeneration", 3}};
    EXPECT_EQ(routeObjectDrift(desired, &live), "");
    // A field the router sets, changed.
    live["spec"]["trafficPolicy"]["tls"]["mode"] = "DISABLE";
    EXPECT_EQ(routeObjectDrift(desired, &live), "with .spec.trafficPolicy.tls.mode changed");
    live["spec"].erase("host");
    EXPECT_EQ(routeObjectDrift(desired, &live),
              "with .spec.host, .spec.trafficPolicy.tls.mode changed");
}

TEST(RouteObjectDrift, NamesAFewPaths) {
    json desired = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"data", json::object()}};
    json live = desired;
    for (const char* key : {"a", "b", "c", "d", "e"}) desired["data"][key] = "1";
    EXPECT_EQ(routeObjectDrift(desired, &live),
              "with .data.a, .data.b, .data.c and 2 more changed");
}

TEST(RouteHealing, FoundNamesEveryObject) {
    RouteHealing healing;
    EXPECT_EQ(healing.found(), "");
    healing.restored = {{"Upstream test/a", "missing"}, {"Service test/b", "with .spec changed"}};
    EXPECT_EQ(healing.found(), "Upstream test/a missing; Service test/b with .spec changed");
}

TEST(CookieIn, TheLiveRoutesCookie) {
    const json route = json::parse(R"({"spec": {"http": [
      {"match": [{"headers": {"cookie": {"regex": ".*flagger-cookie=abcDEFghij.*"}}}]},
      {"route": [{"headers": {"response": {"add": {
         "Set-Cookie": "flagger-primary=KLMnopQRst; Max-Age=60"}}}}]}]}})");
    EXPECT_EQ(cookieIn(route, "flagger-primary"), "flagger-primary=KLMnopQRst");
    EXPECT_EQ(cookieIn(route, "flagger-cookie"), "flagger-cookie=abcDEFghij");
    // Not the tail of a longer name, not an empty value, not when none is set.
    EXPECT_EQ(cookieIn(route, "primary"), std::nullopt);
    EXPECT_EQ(cookieIn(json::parse(R"({"a": ["other-primary=x", "primary="]})"), "primary"),
              std::nullopt);
    EXPECT_EQ(cookieIn(json::object(), "flagger-primary"), std::nullopt);
    EXPECT_EQ(cookieIn(route, ""), std::nullopt);
}

}  // namespace
}  // namespace sluice::canarycontroller::detail
