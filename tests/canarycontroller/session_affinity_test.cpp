// Session affinity (Flagger's analysis.sessionAffinity) carried out by the controller on
// Gateway API and Istio routes (their CRDs in the in-process API server): the cookie kept in
// the Canary status, the sticky rules during the analysis, the previous cookie expired after
// the promotion or rollback, and a router that cannot express it.
#include "harness.h"

namespace sluice::canarytest {
namespace {

const std::string kHttpRoute = "gateway.networking.k8s.io/v1";
const std::string kIstio = "networking.istio.io/v1";

class SessionAffinityTest : public CanaryControllerTest {
  protected:
    // The harness's Gateway API canary (steps of 25 up to 50, interval 1s), sticky.
    static json stickyCanary(const std::string& name, json affinity) {
        json canary = gatewayCanary(name, name);
        canary["spec"]["analysis"]["sessionAffinity"] = std::move(affinity);
        return canary;
    }
    static json istioCanary(const std::string& name, json affinity) {
        json canary = stickyCanary(name, std::move(affinity));
        canary["spec"]["provider"] = "istio";
        canary["spec"]["service"].erase("gatewayRefs");
        return canary;
    }

    json route(const std::string& name) {
        return object(kHttpRoute, "HTTPRoute", name).value_or(json());
    }
    json httpRoutes(const std::string& name) {
        auto vs = object(kIstio, "VirtualService", name);
        return vs ? (*vs)["spec"].value("http", json::array()) : json::array();
    }
    std::string cookie(const std::string& name) {
        return status(name).value("sessionAffinityCookie", "");
    }
    std::string previousCookie(const std::string& name) {
        return status(name).value("previousSessionAffinityCookie", "");
    }
};

// The Set-Cookie a backendRef's filters add; "" when none.
std::string backendSetCookie(const json& ref) {
    for (const json& filter : ref.value("filters", json::array())) {
        for (const json& header :
             filter.value("responseHeaderModifier", json::object()).value("add", json::array()))
            if (header.value("name", "") == "Set-Cookie") return header.value("value", "");
    }
    return "";
}

// The Set-Cookie of a rule's own filters; "" when none.
std::string ruleSetCookie(const json& rule) {
    return backendSetCookie(rule);
}

// The Cookie regex a rule matches; "" when none.
std::string ruleCookieRegex(const json& rule) {
    for (const json& match : rule.value("matches", json::array()))
        for (const json& header : match.value("headers", json::array()))
            if (header.value("name", "") == "Cookie") return header.value("value", "");
    return "";
}

TEST_F(SessionAffinityTest, GatewayApiKeepsCanaryUsersOnTheCanaryUntilThePromotion) {
    healthyMetrics();
    startController();
    ASSERT_NO_FATAL_FAILURE(initialise(
        stickyCanary("podinfo",
                     {{"cookieName", "flagger-cookie"}, {"primaryCookieName", "flagger-primary"}}),
        "podinfo"));
    // Nothing is sticky before an analysis.
    EXPECT_EQ(route("podinfo")["spec"]["rules"].size(), 1u);
    EXPECT_EQ(cookie("podinfo"), "");

    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] {
        return phase("podinfo") == "Progressing" && !cookie("podinfo").empty() &&
               route("podinfo")["spec"]["rules"].size() == 3u;
    })) << status("podinfo").dump(2);
    const std::string sticky = cookie("podinfo");
    EXPECT_EQ(sticky.rfind("flagger-cookie=", 0), 0u) << sticky;
    EXPECT_EQ(sticky.size(), std::string("flagger-cookie=").size() + 10);
    json rules = route("podinfo")["spec"]["rules"];
    // First the canary cookie's rule, all to the canary; then the primary cookie's, all to the
    // primary; then the weighted rule, whose canary sets the canary cookie for a day and whose
    // primary sets the primary cookie for one interval.
    EXPECT_EQ(ruleCookieRegex(rules[0]), ".*" + sticky + ".*");
    EXPECT_EQ(rules[0]["backendRefs"][1]["weight"], 100);
    EXPECT_EQ(rules[0]["backendRefs"][0]["weight"], 0);
    EXPECT_EQ(ruleCookieRegex(rules[1]).rfind(".*flagger-primary=", 0), 0u) << rules[1];
    EXPECT_EQ(rules[1]["backendRefs"][0]["weight"], 100);
    EXPECT_EQ(backendSetCookie(rules[2]["backendRefs"][1]), sticky + "; Max-Age=86400");
    const std::string primarySetCookie = backendSetCookie(rules[2]["backendRefs"][0]);
    EXPECT_EQ(primarySetCookie.rfind("flagger-primary=", 0), 0u) << primarySetCookie;
    EXPECT_NE(primarySetCookie.find("; Max-Age=1"), std::string::npos) << primarySetCookie;
    EXPECT_EQ(ruleCookieRegex(rules[2]), "");

    // The next step keeps the cookie.
    ASSERT_TRUE(eventually([&] { return routeWeights("podinfo").second == 50; }))
        << status("podinfo").dump(2);
    EXPECT_EQ(cookie("podinfo"), sticky);
    EXPECT_EQ(ruleCookieRegex(route("podinfo")["spec"]["rules"][0]), ".*" + sticky + ".*");

    // After the promotion the cookie is the previous one: its rule expires it, all traffic on
    // the primary.
    ASSERT_TRUE(eventually([&] {
        return phase("podinfo") == "Succeeded" && previousCookie("podinfo") == sticky &&
               cookie("podinfo").empty();
    })) << status("podinfo").dump(2);
    ASSERT_TRUE(eventually([&] { return route("podinfo")["spec"]["rules"].size() == 2u; }));
    rules = route("podinfo")["spec"]["rules"];
    EXPECT_EQ(ruleCookieRegex(rules[0]), ".*" + sticky + ".*");
    EXPECT_EQ(ruleSetCookie(rules[0]), sticky + "; Max-Age=-1");
    EXPECT_EQ(rules[0]["backendRefs"][1]["weight"], 0);
    EXPECT_EQ(backendSetCookie(rules[1]["backendRefs"][1]), "");
    EXPECT_EQ(routeWeights("podinfo"), std::make_pair(100, 0));
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:2.0");
    EXPECT_TRUE(events("FieldsNotImplemented").empty());

    // The next analysis gets a new cookie.
    setImage("podinfo", "example/app:3.0");
    ASSERT_TRUE(eventually([&] { return !cookie("podinfo").empty(); }))
        << status("podinfo").dump(2);
    EXPECT_NE(cookie("podinfo"), sticky);
    EXPECT_EQ(previousCookie("podinfo"), sticky);
}

TEST_F(SessionAffinityTest, IstioStickyRouteDuringTheAnalysisAndAfterTheRollback) {
    healthyMetrics();
    startController();
    ASSERT_NO_FATAL_FAILURE(initialise(
        istioCanary("podinfo", {{"cookieName", "canary-session"}, {"maxAge", 3600}}), "podinfo"));
    EXPECT_EQ(httpRoutes("podinfo").size(), 1u);

    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] {
        return !cookie("podinfo").empty() && httpRoutes("podinfo").size() == 2u;
    })) << status("podinfo").dump(2);
    const std::string sticky = cookie("podinfo");
    json http = httpRoutes("podinfo");
    EXPECT_EQ(http[0]["name"], "sticky-route");
    EXPECT_EQ(http[0]["match"][0]["headers"]["cookie"]["regex"], ".*" + sticky + ".*");
    EXPECT_EQ(http[0]["route"][1]["destination"]["host"], "podinfo-canary");
    EXPECT_EQ(http[0]["route"][1]["weight"], 100);
    EXPECT_EQ(http[1]["route"][1]["headers"]["response"]["add"]["Set-Cookie"],
              sticky + "; Max-Age=3600");
    EXPECT_GT(http[1]["route"][1].value("weight", 0), 0);

    // A failing canary is rolled back: the cookie is expired, no one stays on the canary.
    metrics_->whenQueryContains("!~", canaryengine::MetricResult::measured(50));
    ASSERT_TRUE(eventually([&] {
        return phase("podinfo") == "Failed" && previousCookie("podinfo") == sticky;
    })) << status("podinfo").dump(2);
    ASSERT_TRUE(eventually([&] {
        json routes = httpRoutes("podinfo");
        return routes.size() == 2u && routes[0]["route"][1].value("weight", -1) == 0;
    })) << httpRoutes("podinfo").dump(2);
    http = httpRoutes("podinfo");
    EXPECT_EQ(http[0]["headers"]["response"]["add"]["Set-Cookie"], sticky + "; Max-Age=-1");
    EXPECT_EQ(http[1]["route"][0]["weight"], 100);
    EXPECT_FALSE(http[1]["route"][1].contains("headers"));
    EXPECT_FALSE(status("podinfo").contains("sessionAffinityCookie"));
    EXPECT_EQ(imageOf("podinfo-primary"), "example/app:1.0");
}

TEST_F(SessionAffinityTest, ARouterThatCannotSetCookiesIsAnInvalidSpec) {
    startController();
    server_->create(deployment("podinfo", "example/app:1.0"));
    json canary = stickyCanary("podinfo", {{"cookieName", "flagger-cookie"}});
    // Plain Kubernetes Services (blue-green) cannot route by cookie.
    canary["spec"]["provider"] = "kubernetes";
    canary["spec"]["service"].erase("gatewayRefs");
    json& analysis = canary["spec"]["analysis"];
    analysis.erase("stepWeight");
    analysis.erase("maxWeight");
    analysis["iterations"] = 2;
    server_->create(canary);
    ASSERT_TRUE(eventually([&] { return !events("InvalidSpec").empty(); }));
    EXPECT_TRUE(
        hasEventContaining("InvalidSpec",
                           "the kubernetes provider cannot route by session affinity cookie "
                           "(analysis.sessionAffinity)"));
    EXPECT_FALSE(deploymentObject("podinfo-primary"));
}

TEST_F(SessionAffinityTest, AbTestingWithSessionAffinityIsAnInvalidSpec) {
    startController();
    server_->create(deployment("podinfo", "example/app:1.0"));
    json canary = stickyCanary("podinfo", {{"cookieName", "flagger-cookie"}});
    json& analysis = canary["spec"]["analysis"];
    analysis.erase("stepWeight");
    analysis.erase("maxWeight");
    analysis["iterations"] = 2;
    analysis["match"] = json::parse(R"([{"headers": {"x-canary": {"exact": "insider"}}}])");
    server_->create(canary);
    ASSERT_TRUE(eventually([&] { return !events("InvalidSpec").empty(); }));
    EXPECT_TRUE(hasEventContaining("InvalidSpec", "analysis.sessionAffinity cannot be combined"));
    EXPECT_FALSE(deploymentObject("podinfo-primary"));
}

}  // namespace
}  // namespace sluice::canarytest
