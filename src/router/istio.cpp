// Istio VirtualService and DestinationRules in the shape of Flagger's IstioRouter (HTTP routes;
// TCP routes and session affinity are not built).
#include <algorithm>

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

}  // namespace

IstioRouter::IstioRouter(std::string apiVersion) : apiVersion_(std::move(apiVersion)) {}

void IstioRouter::checkSpec(const RouteContext& ctx) const {
    if (ctx.spec.service.port <= 0) throw RouterError("service.port is required");
    if (ctx.spec.service.appProtocol == "tcp") {
        throw RouterError("Istio TCP routing (service.appProtocol: tcp) is not supported");
    }
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
    json http = json::array({std::move(weighted)});
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
