// NGINX ingress canary Ingress in the shape of Flagger's IngressRouter.
#include <charconv>
#include <optional>

#include "checks.h"
#include "json_util.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::text;
using nlohmann::json;

namespace {

constexpr const char* kIngressApiVersion = "networking.k8s.io/v1";

// A/B selectors nginx understands: one cookie (by name: its value "always" selects the canary)
// and one header (exact value or regex).
struct HeaderSelectors {
    std::string cookie;
    std::string header;
    std::string headerValue;
    std::string headerPattern;
};

// One analysis.match header as a selector; RouterError for what the annotations cannot say.
void addSelector(HeaderSelectors& out, const std::string& name, const json& match) {
    const std::string exact = text(match, "exact");
    const std::string regex = text(match, "regex");
    if (name == "cookie") {
        if (exact.empty()) {
            throw RouterError(
                "nginx matches a cookie only by its name (canary-by-cookie: "
                "cookie: {exact: <name>}), not by " +
                match.dump());
        }
        if (!out.cookie.empty() && out.cookie != exact) {
            throw RouterError("nginx A/B testing can use only one cookie, not " + out.cookie +
                              " and " + exact);
        }
        out.cookie = exact;
        return;
    }
    if (exact.empty() && regex.empty()) {
        throw RouterError("nginx matches the header \"" + name + "\" only by exact or regex, not " +
                          match.dump());
    }
    if (!out.header.empty() &&
        (out.header != name || out.headerValue != exact || out.headerPattern != regex)) {
        throw RouterError("nginx A/B testing can use only one header selector (canary-by-header)");
    }
    out.header = name;
    out.headerValue = exact;
    out.headerPattern = regex;
}

HeaderSelectors headerSelectors(const RouteContext& ctx) {
    HeaderSelectors out;
    for (const json& match : ctx.analysisMatch()) {
        for (auto it = match.begin(); match.is_object() && it != match.end(); ++it) {
            // Anything else (sourceLabels, uri, queryParams...) would be silently dropped.
            if (it.key() != "headers" && !detail::isEmpty(*it)) {
                throw RouterError("nginx A/B testing matches by headers and cookies only, not " +
                                  it.key());
            }
        }
        const json& headers = field(match, "headers");
        if (!headers.is_object()) continue;
        for (auto it = headers.begin(); it != headers.end(); ++it) addSelector(out, it.key(), *it);
    }
    return out;
}

// Points every backend that names the apex Service at the canary Service; false if none did.
bool switchBackend(json& backend, const std::string& from, const std::string& to) {
    json* service =
        backend.is_object() && backend.contains("service") ? &backend["service"] : nullptr;
    if (service == nullptr || text(*service, "name") != from) return false;
    (*service)["name"] = to;
    return true;
}

// The source Ingress's spec with its backends for the apex Service pointed at the canary
// Service; nullopt when it has none.
std::optional<json> switchedSpec(json spec, const std::string& apex, const std::string& canary) {
    bool switched = false;
    if (spec.contains("defaultBackend")) {
        switched |= switchBackend(spec["defaultBackend"], apex, canary);
    }
    if (spec.contains("rules") && spec["rules"].is_array()) {
        for (json& rule : spec["rules"]) {
            if (!rule.is_object() || !rule.contains("http")) continue;
            json& paths = rule["http"]["paths"];
            if (!paths.is_array()) continue;
            for (json& path : paths) {
                if (path.is_object() && path.contains("backend")) {
                    switched |= switchBackend(path["backend"], apex, canary);
                }
            }
        }
    }
    if (!switched) return std::nullopt;
    return spec;
}

}  // namespace

NginxRouter::NginxRouter(std::string annotationPrefix) : prefix_(std::move(annotationPrefix)) {}

std::string NginxRouter::annotation(std::string_view suffix) const {
    return prefix_ + "/" + std::string(suffix);
}

void NginxRouter::checkSpec(const RouteContext& ctx) const {
    refuseMirroring(ctx, "nginx");
    if (ctx.spec.ingressRef.name.empty()) {
        throw RouterError("spec.ingressRef must name the Ingress when using the nginx provider");
    }
    if (ctx.abTesting()) {
        HeaderSelectors selectors = headerSelectors(ctx);
        if (selectors.cookie.empty() && selectors.header.empty()) {
            throw RouterError(
                "nginx A/B testing needs an analysis.match header (exact or regex) or an exact "
                "cookie match");
        }
    }
}

void NginxRouter::checkWeights(const RouteContext& ctx, const Weights& weights) const {
    Router::checkWeights(ctx, weights);
    if (weights.mirror) throw RouterError("the nginx provider cannot mirror traffic");
    // The header/cookie annotations send every matching request to the canary: no split.
    if (ctx.abTesting() && weights.canary != 0 && weights.canary != 100) {
        throw RouterError("nginx A/B testing routes matching requests all or nothing, not " +
                          toString(weights));
    }
}

std::vector<ObjectRef> NginxRouter::inputs(const RouteContext& ctx) const {
    const canaryengine::ObjectRef& ref = ctx.spec.ingressRef;
    return {{ref.apiVersion.empty() ? kIngressApiVersion : ref.apiVersion, "Ingress",
             ctx.namespaceName, ref.name}};
}

std::vector<kube::Object> NginxRouter::build(const RouteContext& ctx, const Weights& weights,
                                             const std::vector<kube::Object>& inputs) const {
    checkSpec(ctx);
    checkWeights(ctx, weights);
    if (inputs.size() != 1 || text(inputs[0], "kind") != "Ingress") {
        throw RouterError("the nginx provider builds from the Ingress named by spec.ingressRef");
    }
    const json& source = inputs[0];
    const std::string sourceName = text(field(source, "metadata"), "name");
    if (text(source, "apiVersion") != kIngressApiVersion) {
        throw RouterError("Ingress " + sourceName + " must be read as " + kIngressApiVersion);
    }

    const std::string apex = ctx.apexServiceName();
    std::optional<json> spec = switchedSpec(field(source, "spec"), apex, ctx.canaryServiceName());
    if (!spec) {
        throw RouterError("Ingress " + ctx.namespaceName + "/" + sourceName +
                          " has no backend for the Service " + apex);
    }
    const json& metadata = field(source, "metadata");
    json annotations = canaryAnnotations(ctx, field(metadata, "annotations"), weights);
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

json NginxRouter::canaryAnnotations(const RouteContext& ctx, const json& source,
                                    const Weights& weights) const {
    // The source's annotations without its canary ones (a copied canary-by-header would change
    // the meaning) and without kubectl's record of the source.
    json annotations = json::object();
    const std::string canaryPrefix = annotation("canary");
    if (source.is_object()) {
        for (auto it = source.begin(); it != source.end(); ++it) {
            if (it.key().find(canaryPrefix) != std::string::npos ||
                it.key() == "kubectl.kubernetes.io/last-applied-configuration") {
                continue;
            }
            annotations[it.key()] = *it;
        }
    }
    if (ctx.abTesting()) {
        HeaderSelectors selectors = headerSelectors(ctx);
        if (!selectors.cookie.empty())
            annotations[annotation("canary-by-cookie")] = selectors.cookie;
        if (!selectors.header.empty())
            annotations[annotation("canary-by-header")] = selectors.header;
        if (!selectors.headerValue.empty()) {
            annotations[annotation("canary-by-header-value")] = selectors.headerValue;
        }
        if (!selectors.headerPattern.empty()) {
            annotations[annotation("canary-by-header-pattern")] = selectors.headerPattern;
        }
    } else {
        annotations[annotation("canary-weight")] = std::to_string(weights.canary);
    }
    // As Flagger: the canary Ingress is switched off while it should get nothing.
    annotations[canaryPrefix] = weights.canary > 0 ? "true" : "false";
    return annotations;
}

ObjectRef NginxRouter::weightsObject(const RouteContext& ctx) const {
    return {kIngressApiVersion, "Ingress", ctx.namespaceName, ctx.spec.ingressRef.name + "-canary"};
}

Weights NginxRouter::readWeights(const RouteContext& ctx, const kube::Object& live) const {
    const json& annotations = field(field(live, "metadata"), "annotations");
    if (text(annotations, annotation("canary")) != "true") return Weights{100, 0, false};
    if (ctx.abTesting() && (!text(annotations, annotation("canary-by-cookie")).empty() ||
                            !text(annotations, annotation("canary-by-header")).empty())) {
        return Weights{0, 100, false};  // matching requests all go to the canary
    }
    std::string weight = text(annotations, annotation("canary-weight"));
    int value = -1;
    auto [end, error] = std::from_chars(weight.data(), weight.data() + weight.size(), value);
    if (error != std::errc() || end != weight.data() + weight.size() || value < 0 || value > 100) {
        throw RouterError("Ingress " + ctx.namespaceName + "/" +
                          text(field(live, "metadata"), "name") + " has canary-weight \"" + weight +
                          "\", not a percentage");
    }
    return Weights::forCanary(value);
}

}  // namespace sluice::router
