// Flagger's "kubernetes" provider: blue-green by switching the apex Service's selector.
#include "checks.h"
#include "json_util.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::text;

void KubernetesRouter::checkSpec(const RouteContext& ctx) const {
    // Blue-green (iterations) and skipAnalysis need only the all-or-nothing switch.
    if (ctx.spec.analysis.stepWeight > 0 || !ctx.spec.analysis.stepWeights.empty()) {
        throw RouterError(
            "the kubernetes provider only switches all traffic at once: use blue-green "
            "(analysis.iterations without stepWeight/stepWeights)");
    }
    if (ctx.abTesting()) {
        throw RouterError("the kubernetes provider cannot route by analysis.match headers");
    }
    refuseMirroring(ctx, "kubernetes");
}

void KubernetesRouter::checkWeights(const RouteContext&, const Weights& weights) const {
    const bool allPrimary = weights.primary == 100 && weights.canary == 0;
    const bool allCanary = weights.primary == 0 && weights.canary == 100;
    if (!allPrimary && !allCanary) {
        throw RouterError("the kubernetes provider routes all traffic to one side, not " +
                          toString(weights));
    }
    if (weights.mirror) throw RouterError("the kubernetes provider cannot mirror traffic");
}

std::vector<kube::Object> KubernetesRouter::build(const RouteContext& ctx, const Weights& weights,
                                                  const std::vector<kube::Object>&) const {
    checkSpec(ctx);
    checkWeights(ctx, weights);
    return {buildService(ctx, ServiceRole::Apex,
                         weights.canary == 100 ? ApexSelects::Canary : ApexSelects::Primary)};
}

ObjectRef KubernetesRouter::weightsObject(const RouteContext& ctx) const {
    return {"v1", "Service", ctx.namespaceName, ctx.apexServiceName()};
}

Weights KubernetesRouter::readWeights(const RouteContext& ctx, const kube::Object& live) const {
    std::string selected = text(field(field(live, "spec"), "selector"), ctx.selector.label);
    if (selected == ctx.selector.primaryValue()) return Weights{100, 0, false};
    if (selected == ctx.selector.value) return Weights{0, 100, false};
    throw RouterError("Service " + ctx.namespaceName + "/" + ctx.apexServiceName() + " selects " +
                      ctx.selector.label + "=" + selected + ", neither " +
                      ctx.selector.primaryValue() + " nor " + ctx.selector.value);
}

}  // namespace sluice::router
