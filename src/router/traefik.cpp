// Flagger's Traefik router: a TraefikService `<apex>` (traefik.io/v1alpha1) whose weighted round
// robin goes to `<apex>-primary` and, while it has a weight, `<apex>-canary`. The user's
// IngressRoute points at this TraefikService.
#include "checks.h"
#include "json_util.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::objectMetadata;
using detail::text;
using nlohmann::json;

class TraefikRouter final : public Router {
  public:
    std::string provider() const override { return "traefik"; }

    void checkSpec(const RouteContext& ctx) const override {
        refuseMirroring(ctx, "traefik");
        if (ctx.abTesting()) {
            throw RouterError(
                "the traefik provider (TraefikService) cannot route by analysis.match");
        }
    }

    void checkWeights(const RouteContext&, const Weights& weights) const override {
        checkPercentages(weights);
        if (weights.mirror) throw RouterError("the traefik provider cannot mirror traffic");
    }

    std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                    const std::vector<kube::Object>&) const override {
        checkSpec(ctx);
        checkWeights(ctx, weights);
        auto service = [&](const std::string& name, int weight) {
            return json{{"name", name},
                        {"namespace", ctx.namespaceName},
                        {"port", ctx.spec.service.port},
                        {"weight", weight}};
        };
        json services = json::array({service(ctx.primaryServiceName(), weights.primary)});
        // As Flagger: the canary joins the round robin only while it gets traffic, so Traefik
        // never balances to a Service whose pods are scaled to zero.
        if (weights.canary > 0)
            services.push_back(service(ctx.canaryServiceName(), weights.canary));
        return {{{"apiVersion", "traefik.io/v1alpha1"},
                 {"kind", "TraefikService"},
                 {"metadata",
                  objectMetadata(ctx.apexServiceName(), ctx.namespaceName, ctx.spec.service.apex)},
                 {"spec", {{"weighted", {{"services", std::move(services)}}}}}}};
    }

    ObjectRef weightsObject(const RouteContext& ctx) const override {
        return {"traefik.io/v1alpha1", "TraefikService", ctx.namespaceName, ctx.apexServiceName()};
    }

    Weights readWeights(const RouteContext& ctx, const kube::Object& live) const override {
        const json& services = field(field(field(live, "spec"), "weighted"), "services");
        std::optional<int> primary;
        int canary = 0;  // absent: no traffic
        for (const json& service : services.is_array() ? services : json::array()) {
            // Traefik's weighted round robin weighs a service without a weight 1: read as 0, a
            // canary added by hand without one would take traffic and never be healed.
            const json& weight = field(service, "weight");
            int value = weight.is_number_integer() ? weight.get<int>() : 1;
            if (text(service, "name") == ctx.primaryServiceName()) primary = value;
            if (text(service, "name") == ctx.canaryServiceName()) canary = value;
        }
        if (!primary) {
            throw RouterError("TraefikService " + ctx.namespaceName + "/" + ctx.apexServiceName() +
                              " does not route to " + ctx.primaryServiceName());
        }
        return {*primary, canary, false};
    }
};

std::unique_ptr<Router> makeTraefikRouter(std::string_view) {
    return std::make_unique<TraefikRouter>();
}

}  // namespace sluice::router
