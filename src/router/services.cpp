// Flagger's generated Services (its KubernetesDefaultRouter), the provider factory, and the
// whole desired object set.
#include "json_util.h"
#include "sluice/router/providers.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::stringMap;
using detail::text;
using nlohmann::json;

namespace {

// service.apex / service.primary / service.canary: {labels, annotations}.
const canaryengine::CustomMetadata& customMetadata(const canaryengine::ServiceSpec& service,
                                                   ServiceRole role) {
    switch (role) {
        case ServiceRole::Apex:
            return service.apex;
        case ServiceRole::Primary:
            return service.primary;
        case ServiceRole::Canary:
            return service.canary;
    }
    return service.apex;
}

}  // namespace

void Router::checkWeights(const RouteContext&, const Weights& weights) const {
    checkPercentages(weights);
}

kube::Object buildService(const RouteContext& ctx, ServiceRole role, ApexSelects apexSelects) {
    if (ctx.selector.label.empty() || ctx.selector.value.empty()) {
        throw RouterError("no pod selector label for the Services of " + ctx.spec.targetRef.name);
    }
    if (ctx.spec.service.port <= 0) throw RouterError("service.port is required");
    std::string name;
    std::string podValue;
    switch (role) {
        case ServiceRole::Apex:
            name = ctx.apexServiceName();
            podValue = apexSelects == ApexSelects::Primary ? ctx.selector.primaryValue()
                                                           : ctx.selector.value;
            break;
        case ServiceRole::Primary:
            name = ctx.primaryServiceName();
            podValue = ctx.selector.primaryValue();
            break;
        case ServiceRole::Canary:
            name = ctx.canaryServiceName();
            podValue = ctx.selector.value;
            break;
    }

    const canaryengine::CustomMetadata& custom = customMetadata(ctx.spec.service, role);
    json labels = custom.labels;
    labels[ctx.selector.label] = name;  // as Flagger: the Service is labelled with its own name
    json metadata = {{"name", name}, {"namespace", ctx.namespaceName}, {"labels", labels}};
    if (!custom.annotations.empty()) metadata["annotations"] = custom.annotations;

    const int port = ctx.spec.service.port;
    json targetPort = ctx.spec.service.targetPort;
    if (targetPort.is_null() || targetPort == 0 || targetPort == "") targetPort = port;
    json servicePort = {
        {"name", ctx.spec.service.portName.empty() ? "http" : ctx.spec.service.portName},
        {"protocol", "TCP"},
        {"port", port},
        {"targetPort", targetPort}};
    if (const std::string& appProtocol = ctx.spec.service.appProtocol; !appProtocol.empty()) {
        servicePort["appProtocol"] = appProtocol;
    }
    return {{"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata", std::move(metadata)},
            {"spec",
             {{"type", "ClusterIP"},
              {"selector", {{ctx.selector.label, podValue}}},
              {"ports", json::array({std::move(servicePort)})}}}};
}

std::vector<kube::Object> buildServices(const RouteContext& ctx) {
    return {buildService(ctx, ServiceRole::Apex), buildService(ctx, ServiceRole::Primary),
            buildService(ctx, ServiceRole::Canary)};
}

std::vector<kube::Object> desiredObjects(const Router& router, const RouteContext& ctx,
                                         const Weights& weights,
                                         const std::vector<kube::Object>& inputs) {
    // Build the router's objects first: their RouterErrors are the interesting ones.
    std::vector<kube::Object> routed = router.build(ctx, weights, inputs);
    std::vector<kube::Object> out;
    out.push_back(buildService(ctx, ServiceRole::Primary));
    out.push_back(buildService(ctx, ServiceRole::Canary));
    if (!router.routesApexService()) out.push_back(buildService(ctx, ServiceRole::Apex));
    for (kube::Object& object : routed) out.push_back(std::move(object));
    return out;
}

std::unique_ptr<Router> makeRouter(std::string_view provider) {
    const ProviderEntry* entry = findProvider(provider);
    if (!entry || !entry->makeRouter) {
        throw RouterError("unsupported provider \"" + std::string(provider) +
                          "\" (supported: " + routableProviders() + ")");
    }
    return entry->makeRouter(provider);
}

std::string providerOf(const canaryengine::CanarySpec& spec, std::string_view fallback) {
    return spec.provider.empty() ? std::string(fallback) : spec.provider;
}

}  // namespace sluice::router
