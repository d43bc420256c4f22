// Flagger's App Mesh router (appmesh.k8s.aws/v1beta2): VirtualNodes `<apex>-primary` and
// `<apex>-canary` for the pods of each side, a VirtualRouter `<apex>` whose route splits
// between them, a VirtualService `<apex>` provided by that router, and, as Flagger, a
// VirtualRouter/VirtualService `<apex>-canary` that always reaches the canary (for tests).
// Both VirtualNodes get service.backends, the virtual services their pods may call. The
// listeners are on the container port (service.targetPort when a number, else service.port).
#include "checks.h"
#include "json_util.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::text;
using nlohmann::json;

namespace {

constexpr const char* kAppMeshApiVersion = "appmesh.k8s.aws/v1beta2";

json meshObject(const RouteContext& ctx, const std::string& kind, const std::string& name,
                json spec) {
    return {{"apiVersion", kAppMeshApiVersion},
            {"kind", kind},
            {"metadata", {{"name", name}, {"namespace", ctx.namespaceName}}},
            {"spec", std::move(spec)}};
}

// The port the pods' Envoy sidecars receive on, as Flagger's getContainerPort: service.targetPort
// when it is a port number, else service.port (a named targetPort cannot be a listener port).
int containerPort(const RouteContext& ctx) {
    const json& target = ctx.spec.service.targetPort;
    if (target.is_number_integer() && target.get<int>() > 0) return target.get<int>();
    return ctx.spec.service.port;
}

json listeners(const RouteContext& ctx) {
    return json::array({{{"portMapping", {{"port", containerPort(ctx)}, {"protocol", "http"}}}}});
}

// service.backends as App Mesh VirtualNode backends, as Flagger: an entry starting with
// "arn:aws" is a virtual service's ARN (in any mesh or account), any other one names a
// VirtualService in the Canary's namespace. Empty entries are skipped.
json backends(const RouteContext& ctx) {
    json out = json::array();
    for (const std::string& value : ctx.spec.service.backends) {
        if (value.empty()) continue;
        out.push_back({{"virtualService", value.starts_with("arn:aws")
                                              ? json{{"virtualServiceARN", value}}
                                              : json{{"virtualServiceRef", {{"name", value}}}}}});
    }
    return out;
}

json virtualNode(const RouteContext& ctx, const std::string& service, const std::string& pods,
                 const json& backends) {
    json spec = {
        {"podSelector", {{"matchLabels", {{ctx.selector.label, pods}}}}},
        {"listeners", listeners(ctx)},
        {"serviceDiscovery",
         {{"dns", {{"hostname", service + "." + ctx.namespaceName + ".svc.cluster.local"}}}}}};
    if (!backends.empty()) spec["backends"] = backends;
    return meshObject(ctx, "VirtualNode", service, std::move(spec));
}

json virtualRouter(const RouteContext& ctx, const std::string& name, const Weights& weights) {
    json targets = json::array(
        {{{"virtualNodeRef", {{"name", ctx.primaryServiceName()}}}, {"weight", weights.primary}},
         {{"virtualNodeRef", {{"name", ctx.canaryServiceName()}}}, {"weight", weights.canary}}});
    return meshObject(
        ctx, "VirtualRouter", name,
        {{"listeners", listeners(ctx)},
         {"routes", json::array({{{"name", name},
                                  {"httpRoute",
                                   {{"match", {{"prefix", "/"}}},
                                    {"action", {{"weightedTargets", std::move(targets)}}}}}}})}});
}

json virtualService(const RouteContext& ctx, const std::string& name) {
    return meshObject(
        ctx, "VirtualService", name,
        {{"awsName", name + "." + ctx.namespaceName + ".svc.cluster.local"},
         {"provider", {{"virtualRouter", {{"virtualRouterRef", {{"name", name}}}}}}}});
}

}  // namespace

class AppMeshRouter final : public Router {
  public:
    std::string provider() const override { return "appmesh:v1beta2"; }

    void checkSpec(const RouteContext& ctx) const override {
        refuseMirroring(ctx, "appmesh");
        if (ctx.abTesting())
            throw RouterError("the appmesh provider cannot route by analysis.match");
    }

    void checkWeights(const RouteContext&, const Weights& weights) const override {
        checkPercentages(weights);
        if (weights.mirror) throw RouterError("the appmesh provider cannot mirror traffic");
    }

    std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                    const std::vector<kube::Object>& = {}) const override {
        checkSpec(ctx);
        checkWeights(ctx, weights);
        const json nodeBackends = backends(ctx);
        const std::string apex = ctx.apexServiceName();
        const std::string canary = apex + "-canary";
        return {
            virtualNode(ctx, ctx.primaryServiceName(), ctx.selector.primaryValue(), nodeBackends),
            virtualNode(ctx, ctx.canaryServiceName(), ctx.selector.value, nodeBackends),
            virtualRouter(ctx, apex, weights),
            virtualService(ctx, apex),
            virtualRouter(ctx, canary, Weights{0, 100, false}),
            virtualService(ctx, canary)};
    }

    ObjectRef weightsObject(const RouteContext& ctx) const override {
        return {kAppMeshApiVersion, "VirtualRouter", ctx.namespaceName, ctx.apexServiceName()};
    }

    Weights readWeights(const RouteContext& ctx, const kube::Object& live) const override {
        const json& routes = field(field(live, "spec"), "routes");
        std::optional<int> primary;
        std::optional<int> canary;
        const json& targets =
            routes.is_array() && !routes.empty()
                ? field(field(field(routes[0], "httpRoute"), "action"), "weightedTargets")
                : detail::nullJson();
        for (const json& target : targets.is_array() ? targets : json::array()) {
            std::string node = text(field(target, "virtualNodeRef"), "name");
            const json& weight = field(target, "weight");
            int value = weight.is_number_integer() ? weight.get<int>() : 0;
            if (node == ctx.primaryServiceName()) primary = value;
            if (node == ctx.canaryServiceName()) canary = value;
        }
        if (!primary || !canary) {
            throw RouterError("VirtualRouter " + ctx.namespaceName + "/" + ctx.apexServiceName() +
                              " does not split between the primary and canary VirtualNodes");
        }
        return {*primary, *canary, false};
    }
};

std::unique_ptr<Router> makeAppMeshRouter(std::string_view) {
    return std::make_unique<AppMeshRouter>();
}

}  // namespace sluice::router
