// The provider table (see providers.h). Observer keys are Flagger's observer for that provider.
#include "sluice/router/providers.h"

namespace sluice::router {

// Defined in each router's own file.
std::unique_ptr<Router> makeLinkerdRouter(std::string_view spelling);
std::unique_ptr<Router> makeSmiV1alpha1Router(std::string_view spelling);
std::unique_ptr<Router> makeSmiV1alpha2Router(std::string_view spelling);
std::unique_ptr<Router> makeContourRouter(std::string_view spelling);
std::unique_ptr<Router> makeTraefikRouter(std::string_view spelling);
std::unique_ptr<Router> makeGlooRouter(std::string_view spelling);
std::unique_ptr<Router> makeKumaRouter(std::string_view spelling);
std::unique_ptr<Router> makeSkipperRouter(std::string_view spelling);
std::unique_ptr<Router> makeApisixRouter(std::string_view spelling);
std::unique_ptr<Router> makeAppMeshRouter(std::string_view spelling);

namespace {

template <typename R>
std::unique_ptr<Router> plain(std::string_view) {
    return std::make_unique<R>();
}

std::unique_ptr<Router> gatewayApiV1(std::string_view) {
    return std::make_unique<GatewayApiRouter>("gateway.networking.k8s.io/v1");
}

std::unique_ptr<Router> gatewayApiV1beta1(std::string_view) {
    return std::make_unique<GatewayApiRouter>("gateway.networking.k8s.io/v1beta1");
}

}  // namespace

const std::vector<ProviderEntry>& providerTable() {
    static const std::vector<ProviderEntry> table = {
        {"gatewayapi:v1", {"gatewayapi"}, false, gatewayApiV1, "envoy"},
        {"gatewayapi:v1beta1", {}, false, gatewayApiV1beta1, "envoy"},
        {"istio", {}, false, plain<IstioRouter>, "istio"},
        {"nginx", {}, false, plain<NginxRouter>, "nginx"},
        {"kubernetes", {}, false, plain<KubernetesRouter>, "http"},
        {"linkerd", {}, false, makeLinkerdRouter, "linkerd"},
        // Flagger analyses SMI canaries with its fallback observer, Istio's.
        {"smi:v1alpha1", {}, true, makeSmiV1alpha1Router, "istio"},
        {"smi:v1alpha2", {"smi"}, true, makeSmiV1alpha2Router, "istio"},
        // Flagger's Contour observer is the Envoy one of Gateway API.
        {"contour", {}, false, makeContourRouter, "envoy"},
        {"traefik", {}, false, makeTraefikRouter, "traefik"},
        // "gloo:<namespace>" was Flagger's upstream discovery namespace; Sluice creates the
        // Upstreams beside the RouteTable, so the suffix is accepted and unused.
        {"gloo", {}, true, makeGlooRouter, "gloo"},
        {"kuma", {}, false, makeKumaRouter, "kuma"},
        {"skipper", {}, false, makeSkipperRouter, "skipper"},
        {"apisix", {}, false, makeApisixRouter, "apisix"},
        // Flagger's plain "appmesh" is the v1beta1 API, which App Mesh controllers no longer
        // serve; only its v1beta2 router is here.
        {"appmesh:v1beta2", {}, false, makeAppMeshRouter, "appmesh"},
    };
    return table;
}

const ProviderEntry* findProvider(std::string_view spelling) {
    for (const ProviderEntry& entry : providerTable()) {
        if (spelling == entry.name) return &entry;
        for (std::string_view alias : entry.aliases) {
            if (spelling == alias) return &entry;
        }
        if (entry.acceptsSuffix && spelling.size() > entry.name.size() + 1 &&
            spelling.substr(0, entry.name.size()) == entry.name &&
            spelling[entry.name.size()] == ':') {
            return &entry;
        }
    }
    return nullptr;
}

std::string routableProviders() {
    std::string out;
    for (const ProviderEntry& entry : providerTable()) {
        if (!entry.makeRouter) continue;
        if (!out.empty()) out += ", ";
        out += entry.name;
        if (entry.acceptsSuffix) out += "[:<suffix>]";
        for (std::string_view alias : entry.aliases) {
            out += ", ";
            out += alias;
        }
    }
    return out;
}

}  // namespace sluice::router
