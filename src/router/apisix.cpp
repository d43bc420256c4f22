// Flagger's APISIX router: ApisixRoute `<routeRef.name>-canary` (apisix.apache.org/v2), a copy
// of the user's route whose first HTTP route gets the top priority and two weighted backends:
// the first backend switched to `<apex>-primary`, plus `<apex>-canary` on the same port.
#include "checks.h"
#include "json_util.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::text;
using nlohmann::json;

namespace {

constexpr const char* kApisixApiVersion = "apisix.apache.org/v2";
// Above the user's route, which shares its paths (Flagger's maxPriority).
constexpr int kPriority = 10000;
// The weight of a backend that has none (apisix-ingress-controller's apiv2.DefaultWeight).
constexpr int kDefaultWeight = 100;

}  // namespace

class ApisixRouter final : public Router {
  public:
    std::string provider() const override { return "apisix"; }

    void checkSpec(const RouteContext& ctx) const override {
        refuseMirroring(ctx, "apisix");
        if (ctx.spec.routeRef.name.empty()) {
            throw RouterError(
                "spec.routeRef must name the ApisixRoute when using the apisix provider");
        }
        if (ctx.abTesting())
            throw RouterError("the apisix provider cannot route by analysis.match");
    }

    void checkWeights(const RouteContext&, const Weights& weights) const override {
        checkPercentages(weights);
        if (weights.mirror) throw RouterError("the apisix provider cannot mirror traffic");
    }

    std::vector<ObjectRef> inputs(const RouteContext& ctx) const override {
        return {{kApisixApiVersion, "ApisixRoute", ctx.namespaceName, ctx.spec.routeRef.name}};
    }

    std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                    const std::vector<kube::Object>& inputs) const override {
        checkSpec(ctx);
        checkWeights(ctx, weights);
        if (inputs.size() != 1 || text(inputs[0], "kind") != "ApisixRoute") {
            throw RouterError(
                "the apisix provider builds from the ApisixRoute named by spec.routeRef");
        }
        const json& source = inputs[0];
        json spec = field(source, "spec");
        json& http = spec["http"];
        if (!http.is_array() || http.empty() || !http[0]["backends"].is_array() ||
            http[0]["backends"].empty()) {
            throw RouterError("ApisixRoute " + ctx.namespaceName + "/" + ctx.spec.routeRef.name +
                              " needs an http route with a backend");
        }
        json& route = http[0];
        route["priority"] = kPriority;
        json primary = route["backends"][0];
        primary["serviceName"] = ctx.primaryServiceName();
        primary["weight"] = weights.primary;
        json canary = {{"serviceName", ctx.canaryServiceName()},
                       {"servicePort", primary["servicePort"]},
                       {"weight", weights.canary}};
        for (const char* key : {"resolveGranularity", "subset"}) {
            if (primary.contains(key)) canary[key] = primary[key];
        }
        route["backends"] = json::array({std::move(primary), std::move(canary)});

        const json& metadata = field(source, "metadata");
        json objectMeta = {{"name", ctx.spec.routeRef.name + "-canary"},
                           {"namespace", ctx.namespaceName}};
        json annotations = detail::stringMap(field(metadata, "annotations"));
        annotations.erase("kubectl.kubernetes.io/last-applied-configuration");
        if (!annotations.empty()) objectMeta["annotations"] = std::move(annotations);
        if (json labels = detail::stringMap(field(metadata, "labels")); !labels.empty()) {
            objectMeta["labels"] = std::move(labels);
        }
        return {{{"apiVersion", kApisixApiVersion},
                 {"kind", "ApisixRoute"},
                 {"metadata", std::move(objectMeta)},
                 {"spec", std::move(spec)}}};
    }

    ObjectRef weightsObject(const RouteContext& ctx) const override {
        return {kApisixApiVersion, "ApisixRoute", ctx.namespaceName,
                ctx.spec.routeRef.name + "-canary"};
    }

    Weights readWeights(const RouteContext& ctx, const kube::Object& live) const override {
        const json& http = field(field(live, "spec"), "http");
        std::optional<int> primary;
        std::optional<int> canary;
        const json& backends =
            http.is_array() && !http.empty() ? field(http[0], "backends") : detail::nullJson();
        for (const json& backend : backends.is_array() ? backends : json::array()) {
            // The ingress controller weighs a backend without a weight kDefaultWeight: read as
            // 0, a canary backend whose weight was removed by hand would take half the traffic
            // and never be healed.
            const json& weight = field(backend, "weight");
            int value = weight.is_number_integer() ? weight.get<int>() : kDefaultWeight;
            if (text(backend, "serviceName") == ctx.primaryServiceName()) primary = value;
            if (text(backend, "serviceName") == ctx.canaryServiceName()) canary = value;
        }
        if (!primary || !canary) {
            throw RouterError("ApisixRoute " + ctx.namespaceName + "/" + ctx.spec.routeRef.name +
                              "-canary does not split between " + ctx.primaryServiceName() +
                              " and " + ctx.canaryServiceName());
        }
        return {*primary, *canary, false};
    }
};

std::unique_ptr<Router> makeApisixRouter(std::string_view) {
    return std::make_unique<ApisixRouter>();
}

}  // namespace sluice::router
