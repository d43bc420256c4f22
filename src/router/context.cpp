#include "sluice/router/context.h"

#include "json_util.h"

namespace sluice::router {

using detail::field;
using detail::text;
using nlohmann::json;

std::string toString(const Weights& weights) {
    std::string out =
        "primary=" + std::to_string(weights.primary) + " canary=" + std::to_string(weights.canary);
    if (weights.mirror) out += " mirror";
    return out;
}

void checkPercentages(const Weights& weights) {
    if (weights.primary < 0 || weights.primary > 100 || weights.canary < 0 ||
        weights.canary > 100 || weights.primary + weights.canary != 100) {
        throw RouterError("weights " + toString(weights) +
                          " must be percentages between 0 and 100 that add up to 100");
    }
}

const std::vector<std::string>& defaultSelectorLabels() {
    static const std::vector<std::string> kLabels = {"app", "name", "app.kubernetes.io/name"};
    return kLabels;
}

std::optional<PodSelector> selectorOf(const kube::Object& workload,
                                      const std::vector<std::string>& labels) {
    const json& matchLabels = field(field(field(workload, "spec"), "selector"), "matchLabels");
    for (const std::string& label : labels) {
        const json& value = field(matchLabels, label);
        if (value.is_string() && !value.get_ref<const std::string&>().empty()) {
            return PodSelector{label, value.get<std::string>()};
        }
    }
    return std::nullopt;
}

RouteContext makeRouteContext(const kube::Object& canaryObject, PodSelector selector) {
    // Status errors do not matter for routing; only the spec's do.
    canaryengine::SpecParseResult spec = canaryengine::parseCanarySpec(field(canaryObject, "spec"));
    if (!spec.ok()) {
        const json& metadata = field(canaryObject, "metadata");
        std::string message =
            "Canary " + text(metadata, "namespace") + "/" + text(metadata, "name") + ":";
        for (const std::string& error : spec.errors) message += " " + error + ";";
        message.pop_back();
        throw RouterError(message);
    }
    return makeRouteContext(canaryObject, std::move(spec.spec), std::move(selector));
}

RouteContext makeRouteContext(const kube::Object& canaryObject, canaryengine::CanarySpec spec,
                              PodSelector selector) {
    const json& metadata = field(canaryObject, "metadata");
    RouteContext ctx;
    ctx.canaryName = text(metadata, "name");
    ctx.namespaceName = text(metadata, "namespace");
    ctx.canaryUid = text(metadata, "uid");
    if (std::string apiVersion = text(canaryObject, "apiVersion"); !apiVersion.empty()) {
        ctx.canaryApiVersion = apiVersion;
    }
    if (std::string kind = text(canaryObject, "kind"); !kind.empty()) ctx.canaryKind = kind;
    ctx.spec = std::move(spec);
    ctx.selector = std::move(selector);
    return ctx;
}

}  // namespace sluice::router
