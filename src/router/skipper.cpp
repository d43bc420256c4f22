// Flagger's Skipper router: Ingress `<ingressRef.name>-canary`, a copy of spec.ingressRef in
// which every path to the apex Service goes to `<apex>-primary` and, as a second path, to
// `<apex>-canary`. Skipper splits between them by the zalando.org/backend-weights annotation;
// the predicate Weight(100) makes this Ingress win over the user's, and False() switches it off
// while the canary gets nothing (the user's Ingress then serves).
#include "checks.h"
#include "json_util.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::text;
using nlohmann::json;

namespace {

constexpr const char* kIngressApiVersion = "networking.k8s.io/v1";
constexpr const char* kWeightsAnnotation = "zalando.org/backend-weights";
constexpr const char* kPredicateAnnotation = "zalando.org/skipper-predicate";
constexpr const char* kRouteWeight = "Weight(100)";
constexpr const char* kRouteDisabled = "False()";

// `first && <the source's predicates without ours>`, as Flagger orders them.
std::string withPredicate(const std::string& source, const std::vector<std::string>& first) {
    std::string out;
    for (const std::string& predicate : first) out += (out.empty() ? "" : " && ") + predicate;
    size_t start = 0;
    while (start <= source.size()) {
        size_t end = source.find("&&", start);
        if (end == std::string::npos) end = source.size();
        std::string predicate = source.substr(start, end - start);
        predicate.erase(0, predicate.find_first_not_of(" \t\n"));
        predicate.erase(predicate.find_last_not_of(" \t\n") + 1);
        if (!predicate.empty() && predicate != kRouteWeight && predicate != kRouteDisabled) {
            out += " && " + predicate;
        }
        start = end + 2;
    }
    return out;
}

// The source's rules with each path to the apex Service sent to the primary, followed by a
// copy sent to the canary; nullopt when no path goes to the apex Service.
std::optional<json> splitRules(json spec, const RouteContext& ctx) {
    bool found = false;
    if (!spec.is_object() || !spec["rules"].is_array()) return std::nullopt;
    for (json& rule : spec["rules"]) {
        if (!rule.is_object() || !rule.contains("http") || !rule["http"].contains("paths"))
            continue;
        json& paths = rule["http"]["paths"];
        if (!paths.is_array()) continue;
        json out = json::array();
        for (json& path : paths) {
            if (text(field(field(path, "backend"), "service"), "name") != ctx.apexServiceName()) {
                out.push_back(path);
                continue;
            }
            found = true;
            path["backend"]["service"]["name"] = ctx.primaryServiceName();
            json canary = path;
            canary["backend"]["service"]["name"] = ctx.canaryServiceName();
            out.push_back(path);
            out.push_back(std::move(canary));
        }
        paths = std::move(out);
    }
    if (!found) return std::nullopt;
    return spec;
}

}  // namespace

class SkipperRouter final : public Router {
  public:
    std::string provider() const override { return "skipper"; }

    void checkSpec(const RouteContext& ctx) const override {
        refuseMirroring(ctx, "skipper");
        if (ctx.spec.ingressRef.name.empty()) {
            throw RouterError(
                "spec.ingressRef must name the Ingress when using the skipper provider");
        }
        if (ctx.abTesting()) {
            throw RouterError("the skipper provider cannot route by analysis.match");
        }
    }

    void checkWeights(const RouteContext&, const Weights& weights) const override {
        checkPercentages(weights);
        if (weights.mirror) throw RouterError("the skipper provider cannot mirror traffic");
    }

    std::vector<ObjectRef> inputs(const RouteContext& ctx) const override {
        return {{kIngressApiVersion, "Ingress", ctx.namespaceName, ctx.spec.ingressRef.name}};
    }

    std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                    const std::vector<kube::Object>& inputs) const override {
        checkSpec(ctx);
        checkWeights(ctx, weights);
        if (inputs.size() != 1 || text(inputs[0], "kind") != "Ingress") {
            throw RouterError(
                "the skipper provider builds from the Ingress named by spec.ingressRef");
        }
        const json& source = inputs[0];
        const json& metadata = field(source, "metadata");
        const std::string sourceName = text(metadata, "name");
        std::optional<json> spec = splitRules(field(source, "spec"), ctx);
        if (!spec) {
            throw RouterError("Ingress " + ctx.namespaceName + "/" + sourceName +
                              " has no path to the Service " + ctx.apexServiceName());
        }
        json annotations = detail::stringMap(field(metadata, "annotations"));
        annotations.erase("kubectl.kubernetes.io/last-applied-configuration");
        annotations[kWeightsAnnotation] = json{
            {ctx.primaryServiceName(), weights.primary},
            {ctx.canaryServiceName(),
             weights.canary}}.dump();
        std::vector<std::string> first = {kRouteWeight};
        if (weights.canary == 0) first.insert(first.begin(), kRouteDisabled);
        annotations[kPredicateAnnotation] =
            withPredicate(text(annotations, kPredicateAnnotation), first);
        json objectMeta = {{"name", sourceName + "-canary"},
                           {"namespace", ctx.namespaceName},
                           {"annotations", std::move(annotations)}};
        if (json labels = detail::stringMap(field(metadata, "labels")); !labels.empty()) {
            objectMeta["labels"] = std::move(labels);
        }
        return {{{"apiVersion", kIngressApiVersion},
                 {"kind", "Ingress"},
                 {"metadata", std::move(objectMeta)},
                 {"spec", std::move(*spec)}}};
    }

    ObjectRef weightsObject(const RouteContext& ctx) const override {
        return {kIngressApiVersion, "Ingress", ctx.namespaceName,
                ctx.spec.ingressRef.name + "-canary"};
    }

    Weights readWeights(const RouteContext& ctx, const kube::Object& live) const override {
        json weights =
            json::parse(text(field(field(live, "metadata"), "annotations"), kWeightsAnnotation),
                        nullptr, false);
        const json& primary = field(weights, ctx.primaryServiceName());
        const json& canary = field(weights, ctx.canaryServiceName());
        if (!primary.is_number() || !canary.is_number()) {
            throw RouterError("Ingress " + ctx.namespaceName + "/" + ctx.spec.ingressRef.name +
                              "-canary has no " + kWeightsAnnotation + " for " +
                              ctx.primaryServiceName() + " and " + ctx.canaryServiceName());
        }
        return {primary.get<int>(), canary.get<int>(), false};
    }
};

std::unique_ptr<Router> makeSkipperRouter(std::string_view) {
    return std::make_unique<SkipperRouter>();
}

}  // namespace sluice::router
