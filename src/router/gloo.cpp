// Flagger's Gloo Edge router: Upstreams `<ns>-<apex>-primaryupstream-<port>` and
// `<ns>-<apex>-canaryupstream-<port>` (gloo.solo.io/v1, kube upstreams of the generated
// Services, so Gloo's discovery need not run), and a RouteTable `<apex>` (gateway.solo.io/v1)
// whose route splits between them. The user's VirtualService delegates to the RouteTable.
#include "checks.h"
#include "json_util.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::objectMetadata;
using detail::text;
using nlohmann::json;

namespace {

std::string upstreamName(const RouteContext& ctx, const std::string& role) {
    return ctx.namespaceName + "-" + ctx.apexServiceName() + "-" + role + "upstream-" +
           std::to_string(ctx.spec.service.port);
}

// One analysis.match entry -> a Gloo matcher: headers (exact or regex) and an exact method.
json matcherFor(const json& match) {
    json matcher = json::object();
    for (auto it = match.begin(); it != match.end(); ++it) {
        if (it.key() != "headers" && it.key() != "method") {
            throw RouterError(
                "the gloo provider routes analysis.match by headers and method only, "
                "not " +
                it.key());
        }
    }
    const json& headers = field(match, "headers");
    if (headers.is_object()) {
        for (auto it = headers.begin(); it != headers.end(); ++it) {
            json header = {{"name", it.key()}};
            if (!text(*it, "exact").empty()) {
                header["value"] = text(*it, "exact");
            } else if (!text(*it, "regex").empty()) {
                header["value"] = text(*it, "regex");
                header["regex"] = true;
            } else {
                throw RouterError("the gloo provider matches header " + it.key() +
                                  " by exact or regex only");
            }
            matcher["headers"].push_back(std::move(header));
        }
    }
    const json& method = field(match, "method");
    if (!method.is_null()) {
        if (text(method, "exact").empty()) {
            throw RouterError("the gloo provider matches the method exactly only");
        }
        matcher["methods"] = {text(method, "exact")};
    }
    if (matcher.empty()) throw RouterError("an empty analysis.match for the gloo provider");
    return matcher;
}

}  // namespace

class GlooRouter final : public Router {
  public:
    std::string provider() const override { return "gloo"; }

    void checkSpec(const RouteContext& ctx) const override {
        refuseMirroring(ctx, "gloo");
        for (const json& match : ctx.analysisMatch()) matcherFor(match);
    }

    void checkWeights(const RouteContext&, const Weights& weights) const override {
        checkPercentages(weights);
        if (weights.mirror) throw RouterError("the gloo provider cannot mirror traffic");
    }

    std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                    const std::vector<kube::Object>&) const override {
        checkSpec(ctx);
        checkWeights(ctx, weights);
        json routes = json::array();
        if (ctx.abTesting()) {
            // Gloo ORs the matchers of a route, as Istio does the entries of analysis.match;
            // everyone else goes on to the primary.
            json matchers = json::array();
            for (const json& match : ctx.analysisMatch()) matchers.push_back(matcherFor(match));
            json ab = route(ctx, weights);
            ab["matchers"] = std::move(matchers);
            routes.push_back(std::move(ab));
            routes.push_back(route(ctx, Weights{}));
        } else {
            routes.push_back(route(ctx, weights));
        }
        return {upstream(ctx, ServiceRole::Primary),
                upstream(ctx, ServiceRole::Canary),
                {{"apiVersion", "gateway.solo.io/v1"},
                 {"kind", "RouteTable"},
                 {"metadata",
                  objectMetadata(ctx.apexServiceName(), ctx.namespaceName, ctx.spec.service.apex)},
                 {"spec", {{"routes", std::move(routes)}}}}};
    }

    ObjectRef weightsObject(const RouteContext& ctx) const override {
        return {"gateway.solo.io/v1", "RouteTable", ctx.namespaceName, ctx.apexServiceName()};
    }

    // The first route's weights (the A/B one when there is one).
    Weights readWeights(const RouteContext& ctx, const kube::Object& live) const override {
        const json& routes = field(field(live, "spec"), "routes");
        std::optional<int> primary;
        std::optional<int> canary;
        if (routes.is_array() && !routes.empty()) {
            const json& destinations =
                field(field(field(routes[0], "routeAction"), "multi"), "destinations");
            for (const json& d : destinations.is_array() ? destinations : json::array()) {
                std::string name = text(field(field(d, "destination"), "upstream"), "name");
                const json& weight = field(d, "weight");
                int value = weight.is_number_integer() ? weight.get<int>() : 0;
                if (name == upstreamName(ctx, "primary")) primary = value;
                if (name == upstreamName(ctx, "canary")) canary = value;
            }
        }
        if (!primary || !canary) {
            throw RouterError("RouteTable " + ctx.namespaceName + "/" + ctx.apexServiceName() +
                              " does not split between " + upstreamName(ctx, "primary") + " and " +
                              upstreamName(ctx, "canary") + " in its first route");
        }
        return {*primary, *canary, false};
    }

  private:
    static json route(const RouteContext& ctx, const Weights& weights) {
        auto destination = [&](const std::string& role, int weight) {
            return json{{"destination",
                         {{"upstream",
                           {{"name", upstreamName(ctx, role)}, {"namespace", ctx.namespaceName}}}}},
                        {"weight", weight}};
        };
        return {{"inheritablePathMatchers", true},
                {"routeAction",
                 {{"multi",
                   {{"destinations", json::array({destination("primary", weights.primary),
                                                  destination("canary", weights.canary)})}}}}}};
    }

    static json upstream(const RouteContext& ctx, ServiceRole role) {
        const bool primary = role == ServiceRole::Primary;
        return {{"apiVersion", "gloo.solo.io/v1"},
                {"kind", "Upstream"},
                {"metadata",
                 {{"name", upstreamName(ctx, primary ? "primary" : "canary")},
                  {"namespace", ctx.namespaceName}}},
                {"spec",
                 {{"kube",
                   {{"serviceName", primary ? ctx.primaryServiceName() : ctx.canaryServiceName()},
                    {"serviceNamespace", ctx.namespaceName},
                    {"servicePort", ctx.spec.service.port},
                    {"selector",
                     {{ctx.selector.label,
                       primary ? ctx.selector.primaryValue() : ctx.selector.value}}}}}}}};
    }
};

std::unique_ptr<Router> makeGlooRouter(std::string_view) {
    return std::make_unique<GlooRouter>();
}

}  // namespace sluice::router
