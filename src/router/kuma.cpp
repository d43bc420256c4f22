// Kuma: a MeshHTTPRoute `<apex>` (kuma.io/v1alpha1, namespaced) that sends the traffic for the
// apex MeshService to the primary and canary MeshServices by weight. Flagger writes the
// cluster-scoped TrafficRoute, which Kuma 2.x deprecates and which a namespaced Canary cannot
// own; the weights and service names (`<service>_<namespace>_svc_<port>`) are Flagger's.
#include "checks.h"
#include "json_util.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::objectMetadata;
using detail::text;
using nlohmann::json;

namespace {

// Kuma's name of a Kubernetes Service port as a mesh service.
std::string meshService(const RouteContext& ctx, const std::string& service) {
    return service + "_" + ctx.namespaceName + "_svc_" + std::to_string(ctx.spec.service.port);
}

json prefixPath(const RouteContext& ctx) {
    std::string prefix = "/";
    const json& match = ctx.spec.service.match;
    if (match.is_array() && !match.empty()) {
        std::string given = text(field(match[0], "uri"), "prefix");
        if (!given.empty()) prefix = given;
    }
    return {{"type", "PathPrefix"}, {"value", prefix}};
}

// One analysis.match entry -> a MeshHTTPRoute match: the path prefix, headers (exact, regex,
// prefix) and an exact method.
json matchFor(const RouteContext& ctx, const json& match) {
    json out = {{"path", prefixPath(ctx)}};
    for (auto it = match.begin(); it != match.end(); ++it) {
        if (it.key() != "headers" && it.key() != "method") {
            throw RouterError(
                "the kuma provider routes analysis.match by headers and method only, "
                "not " +
                it.key());
        }
    }
    const json& headers = field(match, "headers");
    if (headers.is_object()) {
        static const std::vector<std::pair<std::string, std::string>> kinds = {
            {"exact", "Exact"}, {"regex", "RegularExpression"}, {"prefix", "Prefix"}};
        for (auto it = headers.begin(); it != headers.end(); ++it) {
            json header = {{"name", it.key()}};
            for (const auto& [istio, kuma] : kinds) {
                if (text(*it, istio).empty()) continue;
                header["type"] = kuma;
                header["value"] = text(*it, istio);
                break;
            }
            if (!header.contains("type")) {
                throw RouterError("the kuma provider matches header " + it.key() +
                                  " by exact, regex or prefix only");
            }
            out["headers"].push_back(std::move(header));
        }
    }
    if (const json& method = field(match, "method"); !method.is_null()) {
        if (text(method, "exact").empty()) {
            throw RouterError("the kuma provider matches the method exactly only");
        }
        out["method"] = text(method, "exact");
    }
    return out;
}

}  // namespace

class KumaRouter final : public Router {
  public:
    std::string provider() const override { return "kuma"; }

    void checkSpec(const RouteContext& ctx) const override {
        refuseMirroring(ctx, "kuma");
        for (const json& match : ctx.analysisMatch()) matchFor(ctx, match);
    }

    void checkWeights(const RouteContext&, const Weights& weights) const override {
        checkPercentages(weights);
        if (weights.mirror) throw RouterError("the kuma provider cannot mirror traffic");
    }

    std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                    const std::vector<kube::Object>&) const override {
        checkSpec(ctx);
        checkWeights(ctx, weights);
        json rules = json::array();
        if (ctx.abTesting()) {
            json matches = json::array();
            for (const json& match : ctx.analysisMatch()) matches.push_back(matchFor(ctx, match));
            rules.push_back(rule(ctx, std::move(matches), weights));
        }
        // Without A/B testing the weighted rule; with it, everyone else goes to the primary.
        rules.push_back(rule(ctx, json::array({{{"path", prefixPath(ctx)}}}),
                             ctx.abTesting() ? Weights{} : weights));
        json to = {{"targetRef",
                    {{"kind", "MeshService"}, {"name", meshService(ctx, ctx.apexServiceName())}}},
                   {"rules", std::move(rules)}};
        return {
            {{"apiVersion", "kuma.io/v1alpha1"},
             {"kind", "MeshHTTPRoute"},
             {"metadata",
              objectMetadata(ctx.apexServiceName(), ctx.namespaceName, ctx.spec.service.apex)},
             {"spec", {{"targetRef", {{"kind", "Mesh"}}}, {"to", json::array({std::move(to)})}}}}};
    }

    ObjectRef weightsObject(const RouteContext& ctx) const override {
        return {"kuma.io/v1alpha1", "MeshHTTPRoute", ctx.namespaceName, ctx.apexServiceName()};
    }

    // The first rule's weights (the A/B one when there is one).
    Weights readWeights(const RouteContext& ctx, const kube::Object& live) const override {
        const json& to = field(field(live, "spec"), "to");
        std::optional<int> primary;
        std::optional<int> canary;
        if (to.is_array() && !to.empty()) {
            const json& rules = field(to[0], "rules");
            const json& refs = rules.is_array() && !rules.empty()
                                   ? field(field(rules[0], "default"), "backendRefs")
                                   : detail::nullJson();
            for (const json& ref : refs.is_array() ? refs : json::array()) {
                const json& weight = field(ref, "weight");
                int value = weight.is_number_integer() ? weight.get<int>() : 1;  // Kuma's default
                if (text(ref, "name") == meshService(ctx, ctx.primaryServiceName()))
                    primary = value;
                if (text(ref, "name") == meshService(ctx, ctx.canaryServiceName())) canary = value;
            }
        }
        if (!primary || !canary) {
            throw RouterError("MeshHTTPRoute " + ctx.namespaceName + "/" + ctx.apexServiceName() +
                              " does not split between the primary and canary services in its "
                              "first rule");
        }
        return {*primary, *canary, false};
    }

  private:
    static json rule(const RouteContext& ctx, json matches, const Weights& weights) {
        auto backend = [&](const std::string& service, int weight) {
            return json{
                {"kind", "MeshService"}, {"name", meshService(ctx, service)}, {"weight", weight}};
        };
        return {
            {"matches", std::move(matches)},
            {"default",
             {{"backendRefs", json::array({backend(ctx.primaryServiceName(), weights.primary),
                                           backend(ctx.canaryServiceName(), weights.canary)})}}}};
    }
};

std::unique_ptr<Router> makeKumaRouter(std::string_view) {
    return std::make_unique<KumaRouter>();
}

}  // namespace sluice::router
