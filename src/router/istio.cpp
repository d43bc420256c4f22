// Istio VirtualService and DestinationRules in the shape of Flagger's IstioRouter (HTTP routes,
// with Flagger's sticky routes for session affinity; TCP routes are not built).
#include <algorithm>

#include "checks.h"
#include "json_util.h"
#include "match.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::isEmpty;
using detail::text;
using nlohmann::json;

namespace {

// The fields of service that every HTTP route carries, as Istio spells them.
json routeTemplate(const RouteContext& ctx) {
    json route = json::object();
    const canaryengine::ServiceSpec& service = ctx.spec.service;
    json istioRewrite = json::object();
    if (!service.rewrite.uri.empty()) istioRewrite["uri"] = service.rewrite.uri;
    if (!service.rewrite.authority.empty()) istioRewrite["authority"] = service.rewrite.authority;
    if (!istioRewrite.empty()) route["rewrite"] = std::move(istioRewrite);
    if (!service.timeout.empty()) route["timeout"] = service.timeout;
    if (!isEmpty(service.retries)) route["retries"] = service.retries;
    if (!isEmpty(service.corsPolicy)) route["corsPolicy"] = service.corsPolicy;
    if (!isEmpty(service.headers)) route["headers"] = service.headers;
    return route;
}

// Flagger's names for the routes that keep sticky sessions (before the weighted route).
constexpr const char* kStickyRoute = "sticky-route";
constexpr const char* kStickyPrimaryRoute = "sticky-primary-route";

// `headers` (Istio Headers) with a response header added.
void addResponseHeader(json& headers, const std::string& name, const std::string& value) {
    if (!headers.is_object()) headers = json::object();
    json& response = headers["response"];
    if (!response.is_object()) response = json::object();
    json& add = response["add"];
    if (!add.is_object()) add = json::object();
    add[name] = value;
}

// A match on the Cookie header carrying `cookie`, within each service match.
json cookieMatch(const RouteContext& ctx, const std::string& cookie) {
    json match = {{"headers", {{"cookie", {{"regex", detail::cookieRegex(cookie)}}}}}};
    return detail::mergeIstioMatches(json::array({std::move(match)}), ctx.spec.service.match);
}

}  // namespace

IstioRouter::IstioRouter(std::string apiVersion) : apiVersion_(std::move(apiVersion)) {}

void IstioRouter::checkSpec(const RouteContext& ctx) const {
    if (ctx.spec.service.port <= 0) throw RouterError("service.port is required");
    if (ctx.spec.service.appProtocol == "tcp") {
        throw RouterError("Istio TCP routing (service.appProtocol: tcp) is not supported");
    }
    checkSessionAffinity(ctx);
}

std::vector<kube::Object> IstioRouter::build(const RouteContext& ctx, const Weights& weights,
                                             const std::vector<kube::Object>&) const {
    checkSpec(ctx);
    checkWeights(ctx, weights);
    const std::string apex = ctx.apexServiceName();
    const std::string primary = ctx.primaryServiceName();
    const std::string canary = ctx.canaryServiceName();

    std::vector<std::string> hosts = ctx.spec.service.hosts;
    if (std::find_if(hosts.begin(), hosts.end(), [&](const std::string& host) {
            return host == apex || host == "*";
        }) == hosts.end()) {
        hosts.push_back(apex);  // in-mesh clients call the apex Service by name
    }
    std::vector<std::string> gateways = ctx.spec.service.gateways;
    if (gateways.empty()) gateways.push_back("mesh");

    // As Flagger: with portDiscovery behind an ingress gateway the destination names the port.
    const bool destinationPort = ctx.spec.service.portDiscovery &&
                                 !ctx.spec.service.gateways.empty() &&
                                 ctx.spec.service.gateways.front() != "mesh";
    auto destination = [&](const std::string& host, int weight) {
        json dest = {{"host", host}};
        if (destinationPort) dest["port"] = {{"number", ctx.spec.service.port}};
        return json{{"destination", std::move(dest)}, {"weight", weight}};
    };

    const json& serviceMatch = ctx.spec.service.match;
    const json base = routeTemplate(ctx);
    json weighted = base;
    if (ctx.abTesting()) {
        weighted["match"] = detail::mergeIstioMatches(ctx.analysisMatch(), serviceMatch);
    } else if (!isEmpty(serviceMatch)) {
        weighted["match"] = serviceMatch;
    }
    weighted["route"] = {destination(primary, weights.primary),
                         destination(canary, weights.canary)};
    if (weights.mirror) {
        weighted["mirror"] = {{"host", canary}};
        if (const std::optional<int>& mirrorWeight = ctx.spec.analysis.mirrorWeight;
            mirrorWeight && *mirrorWeight > 0) {
            weighted["mirrorPercentage"] = {{"value", *mirrorWeight}};
        }
    }
    json http = json::array();
    if (const canaryengine::SessionAffinitySpec* affinity = detail::sessionAffinity(ctx)) {
        // Flagger's sticky sessions: while the canary gets traffic its responses set the canary
        // cookie (the primary's the primary cookie), and a route before the weighted one sends
        // requests carrying it there; back at 0 that route expires the previous cookie.
        const canaryengine::SessionAffinityCookies& cookies = affinity->cookies;
        if (weights.canary > 0 && !cookies.canary.empty()) {
            addResponseHeader(weighted["route"][1]["headers"], "Set-Cookie",
                              detail::setCookie(cookies.canary, affinity->maxAge));
            json sticky = base;
            sticky["name"] = kStickyRoute;
            sticky["match"] = cookieMatch(ctx, cookies.canary);
            sticky["route"] = {destination(primary, 0), destination(canary, 100)};
            http.push_back(std::move(sticky));
            if (!cookies.primary.empty()) {
                addResponseHeader(
                    weighted["route"][0]["headers"], "Set-Cookie",
                    detail::setCookie(cookies.primary, detail::primaryCookieMaxAge(ctx)));
                json stickyPrimary = base;
                stickyPrimary["name"] = kStickyPrimaryRoute;
                stickyPrimary["match"] = cookieMatch(ctx, cookies.primary);
                stickyPrimary["route"] = {destination(primary, 100), destination(canary, 0)};
                http.push_back(std::move(stickyPrimary));
            }
        } else if (weights.canary == 0 && !cookies.previous.empty()) {
            json sticky = base;
            sticky["name"] = kStickyRoute;
            sticky["match"] = cookieMatch(ctx, cookies.previous);
            addResponseHeader(sticky["headers"], "Set-Cookie",
                              detail::setCookie(cookies.previous, -1));
            sticky["route"] = {destination(primary, weights.primary), destination(canary, 0)};
            http.push_back(std::move(sticky));
        }
    }
    http.push_back(std::move(weighted));
    if (ctx.abTesting()) {
        // Requests without the A/B headers stay on the primary.
        json fallback = base;
        if (!isEmpty(serviceMatch)) fallback["match"] = serviceMatch;
        fallback["route"] = json::array({destination(primary, 100)});
        http.push_back(std::move(fallback));
    }

    std::vector<kube::Object> objects;
    for (const std::string& host : {primary, canary}) {
        json spec = {{"host", host}};
        if (const json& policy = ctx.spec.service.trafficPolicy; !isEmpty(policy)) {
            spec["trafficPolicy"] = policy;
        }
        objects.push_back({{"apiVersion", apiVersion_},
                           {"kind", "DestinationRule"},
                           {"metadata", {{"name", host}, {"namespace", ctx.namespaceName}}},
                           {"spec", std::move(spec)}});
    }
    objects.push_back(
        {{"apiVersion", apiVersion_},
         {"kind", "VirtualService"},
         {"metadata", detail::objectMetadata(apex, ctx.namespaceName, ctx.spec.service.apex)},
         {"spec", {{"hosts", hosts}, {"gateways", gateways}, {"http", std::move(http)}}}});
    return objects;
}

ObjectRef IstioRouter::weightsObject(const RouteContext& ctx) const {
    return {apiVersion_, "VirtualService", ctx.namespaceName, ctx.apexServiceName()};
}

Weights IstioRouter::readWeights(const RouteContext& ctx, const kube::Object& live) const {
    const std::string primary = ctx.primaryServiceName();
    const std::string canary = ctx.canaryServiceName();
    const std::string where = "VirtualService " + ctx.namespaceName + "/" + ctx.apexServiceName();
    const json& http = field(field(live, "spec"), "http");
    for (const json& route : http.is_array() ? http : json::array()) {
        // The sticky routes send everyone with a cookie to one side: not the split.
        const std::string routeName = text(route, "name");
        if (routeName == kStickyRoute || routeName == kStickyPrimaryRoute) continue;
        const json& destinations = field(route, "route");
        if (!destinations.is_array()) continue;
        bool routesCanary = std::any_of(
            destinations.begin(), destinations.end(),
            [&](const json& d) { return text(field(d, "destination"), "host") == canary; });
        if (!routesCanary) continue;
        Weights weights{0, 0, false};
        for (const json& d : destinations) {
            const json& weight = field(d, "weight");
            // Istio sends everything to a lone destination without a weight.
            int value = weight.is_number_integer() ? weight.get<int>()
                                                   : (destinations.size() == 1 ? 100 : 0);
            std::string host = text(field(d, "destination"), "host");
            if (host == primary) weights.primary = value;
            if (host == canary) weights.canary = value;
        }
        weights.mirror = !text(field(route, "mirror"), "host").empty();
        if (weights.primary == 0 && weights.canary == 0) {
            throw RouterError(where + " routes no traffic to " + primary + " or " + canary);
        }
        return weights;
    }
    throw RouterError(where + " has no HTTP route to " + canary);
}

}  // namespace sluice::router
